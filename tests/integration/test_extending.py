"""Adding an objective, a data set or a built-in part is a change to one file (issue 26): each
test copies the package, makes the change the README's "extending" paragraph shows (one entry
in one file, see :data:`EXTENSIONS`), checks that no other file of the copy differs, and runs
``pyro-vae`` from the copy in a child process, which takes the new name on the command line,
validates it, finds its implementation and trains with it."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import REPO, make_idx_files, tiny


@dataclass(frozen=True)
class Extension:
    """A change to one file of the package: ``text`` inserted before ``anchor`` (each
    ``(anchor, text)`` of ``inserts``)."""

    file: str
    inserts: tuple[tuple[str, str], ...]

    def apply(self, root: Path) -> None:
        path = root / "pyro_vae" / self.file
        source = path.read_text()
        for anchor, text in self.inserts:
            assert source.count(anchor) == 1, f"{self.file}: {anchor!r} is not one place"
            source = source.replace(anchor, text + anchor)
        path.write_text(source)


EXTENSIONS = {
    "objective": Extension(
        "config/objectives.py",
        (
            (
                '    )\n}\n"""Every training objective by name',
                '        Objective("trace-eager", "Trace_ELBO, never JIT-compiled", "ELBO", '
                '"pyro.infer:Trace_ELBO"),\n',
            ),
        ),
    ),
    "data set": Extension(
        "config/datasets.py",
        (
            (
                '    )\n}\n"""Every named data set',
                '        DataSet("tiny-mnist", 784, 1, TEN_DIGITS, torchvision="MNIST"),\n',
            ),
        ),
    ),
    "built-in part": Extension(
        "model/priors.py",
        (
            (
                "PRIORS: dict[str, type[Prior]] = {",
                "class StudentTPrior(Prior):\n"
                '    """p(z) = prod_i StudentT(z_i; df, 0, 1): heavier tails than N(0, I)."""\n'
                "\n"
                "    def __init__(self, latent_dim: int, df: float = 3.0) -> None:\n"
                "        super().__init__(latent_dim)\n"
                '        self.register_buffer("df", torch.full((latent_dim,), float(df)), '
                "persistent=False)\n"
                "\n"
                "    def forward(self) -> dist.Distribution:\n"
                "        zero, one = torch.zeros_like(self.df), torch.ones_like(self.df)\n"
                "        return dist.StudentT(self.df, zero, one).to_event(1)\n"
                "\n\n",
            ),
            ('    "two-layer-vamp": TwoLayerVampPrior,\n', '    "student-t": StudentTPrior,\n'),
        ),
    ),
}
"""The change each kind of addition takes: what the README's "extending" paragraph shows."""


def extended_copy(tmp_path: Path, what: str) -> Path:
    """A copy of the package with the change ``what`` made, which differs from the package in
    that one file only; the directory to put on ``PYTHONPATH``."""
    root = tmp_path / "copy"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "pyro_vae", root / "pyro_vae", ignore=ignore)
    EXTENSIONS[what].apply(root)
    assert changed_files(REPO / "pyro_vae", root / "pyro_vae") == [EXTENSIONS[what].file]
    return root


def changed_files(a: Path, b: Path, prefix: str = "") -> list[str]:
    """The files that differ between two trees (added, removed or changed)."""
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__"])
    found = [prefix + n for n in cmp.left_only + cmp.right_only + cmp.diff_files]
    for name in cmp.common_files:  # dircmp compares by size and time: compare the bytes
        if name not in cmp.diff_files and not filecmp.cmp(a / name, b / name, shallow=False):
            found.append(prefix + name)
    for name in cmp.common_dirs:
        found += changed_files(a / name, b / name, f"{prefix}{name}/")
    return sorted(found)


def pyro_vae(root: Path, *args: str) -> subprocess.CompletedProcess:
    """``pyro-vae ARGS`` run from the package copy in ``root`` (help on lines never wrapped)."""
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "COLUMNS": "10000"}
    return subprocess.run(
        [sys.executable, "-m", "pyro_vae", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def help_text(root: Path) -> str:
    """``pyro-vae train --help`` from the copy."""
    return pyro_vae(root, "train", "--help").stdout


def trained(root: Path, runs: Path, *args: str) -> dict:
    """``pyro-vae train ARGS`` from the copy, which must succeed; the run's configuration."""
    done = pyro_vae(root, "train", *args, "--runs-dir", str(runs), "--name", "new")
    assert done.returncode == 0, done.stderr
    return json.loads((runs / "new" / "config.json").read_text())


def test_an_objective_is_one_entry_in_its_declarations(tmp_path):
    root = extended_copy(tmp_path, "objective")
    assert "trace-eager (Trace_ELBO, never JIT-compiled)" in help_text(root)
    cfg = trained(root, tmp_path / "runs", *tiny(), "--elbo", "trace-eager")
    assert cfg["train"]["elbo"] == "trace-eager" and cfg["train"]["jit"] is False
    refused = pyro_vae(root, "train", *tiny(), "--elbo", "trace-eager", "--jit")
    assert refused.returncode == 2 and "trace-eager" in refused.stderr  # its capabilities hold


def test_a_data_set_is_one_entry_in_its_declarations(tmp_path):
    root = extended_copy(tmp_path, "data set")
    files = tmp_path / "files"
    make_idx_files(files, n_train=60, n_test=20)
    listed = pyro_vae(root, "datasets", "--data-dir", str(files)).stdout
    assert any(line.split()[:2] == ["tiny-mnist", str(files)] for line in listed.splitlines())
    args = ["--dataset", "tiny-mnist", "--data-dir", str(files), "--no-download"]
    cfg = trained(root, tmp_path / "runs", *tiny(epochs=None), *args, "--batch-size", "25")
    assert cfg["data"]["dataset"] == "tiny-mnist"
    assert cfg["train"]["epochs"] == 1  # the declaration's default


def test_a_built_in_part_is_one_class_and_one_entry_in_its_file(tmp_path):
    root = extended_copy(tmp_path, "built-in part")
    (line,) = [x for x in help_text(root).splitlines() if x.startswith("  --prior NAME")]
    assert "normal, student-t, two-layer," in line  # the names, known without torch
    args = ["--prior", "student-t", "--prior-kwargs", '{"df": 5}']
    cfg = trained(root, tmp_path / "runs", *tiny(), *args)
    assert cfg["model"]["prior"] == "student-t" and cfg["model"]["prior_kwargs"] == {"df": 5}


@pytest.mark.parametrize("what", sorted(EXTENSIONS))
def test_without_the_change_the_name_is_refused(tmp_path, what):
    """The package as it is does not know the names the changes add (so each test above
    shows the change at work)."""
    name = {"objective": "trace-eager", "data set": "tiny-mnist", "built-in part": "student-t"}
    option = {"objective": "--elbo", "data set": "--dataset", "built-in part": "--prior"}
    done = pyro_vae(REPO, "train", *tiny(), option[what], name[what], "--runs-dir", str(tmp_path))
    assert done.returncode == 2 and name[what] in done.stderr
