"""The second fresh campaign against issue 24 (hardening): what still failed, one test each.

A resume with ``--tensorboard`` that rewrote ``config.json`` and then failed on a
``tensorboard`` that is a file or a link; seeds from 2^32 up; output encodings that cannot show
a run's name; a ``baseline.json`` whose best mixture is none of its rows; checkpoint weights
that are sparse or of another dtype, and an ``image_shape`` of 0x0; more baseline components
than training images; IDX labels outside the data set's classes; a bogus mixture kind; and
the files that were passed over in silence (links at files a command replaces, a huge sparse
``.lock``, a ``config.json`` without a format)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyro
import pytest
import torch
from helpers import make_idx_files

from pyro_vae import write_idx
from pyro_vae.cli import main
from pyro_vae.data.datasets import load_dataset
from pyro_vae.errors import DataFormatError
from pyro_vae.rng import numpy_seed, set_rng_seed

TINY = ["--epochs", "1", "--hidden", "8", "--latent-dim", "2", "--no-jit", "--quiet"]
SECRET = "SECRET-77d1-never-in-a-report"


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """A complete tiny run: checkpoint, evaluation, baselines (K = 1, 2), figures, report."""
    root = tmp_path_factory.mktemp("base")
    argv = ["run", *TINY, "--num-samples", "3", "--baseline-components", "1", "2"]
    assert main([*argv, "--runs-dir", str(root), "--name", "base"]) == 0
    return root / "base"


@pytest.fixture
def run(base_run, tmp_path) -> Path:
    """A fresh copy of the complete run, in ``tmp_path/runs/r``."""
    copy = tmp_path / "runs" / "r"
    shutil.copytree(base_run, copy)
    return copy


@pytest.fixture
def outside(tmp_path) -> Path:
    """A directory of the user's, outside every run, holding a secret."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.json").write_text(json.dumps({"password": SECRET}))
    (home / "tb").mkdir()
    return home


def _code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def _error(capsys) -> str:
    """The one-line error of a refused command (no traceback)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("pyro-vae: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _snapshot(run: Path) -> dict[str, object]:
    """Every entry of the run: a link's target, a file's bytes, or a directory."""
    out: dict[str, object] = {}
    for path in sorted(run.rglob("*")):
        key = str(path.relative_to(run))
        if path.is_symlink():
            out[key] = ("link", os.readlink(path))
        elif path.is_file():
            out[key] = path.read_bytes()
        else:
            out[key] = "dir"
    return out


def _edit_checkpoint(run: Path, edit) -> None:
    path = run / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    edit(state)
    torch.save(state, path)


# ------------------------------------------------------------------ 1. data loss


@pytest.mark.parametrize("kind", ["file", "link"])
def test_resume_with_tensorboard_refuses_a_tensorboard_that_is_no_directory(
    run, outside, capsys, kind
):
    pytest.importorskip("tensorboard")
    if kind == "file":
        (run / "tensorboard").write_text("a file, not a directory")
    else:
        (run / "tensorboard").symlink_to(outside / "tb", target_is_directory=True)
    before = _snapshot(run)
    argv = ["train", "--resume", str(run), "--epochs", "2", "--quiet", "--tensorboard"]
    assert _code(argv) == 1
    line = _error(capsys)
    assert "tensorboard" in line
    assert ("symbolic link" if kind == "link" else "not a directory") in line
    assert _snapshot(run) == before  # config.json above all
    assert list((outside / "tb").iterdir()) == []


# ------------------------------------------------------------------ 2. seeds from 2^32


def test_numpy_is_seeded_as_pyro_seeds_it_below_2_32():
    for seed in (0, 7, 2**32 - 1):
        pyro.set_rng_seed(seed)
        expected = (torch.rand(3), random.random(), np.random.rand(3))
        set_rng_seed(seed)
        got = (torch.rand(3), random.random(), np.random.rand(3))
        assert torch.equal(got[0], expected[0]) and got[1] == expected[1]
        assert np.array_equal(got[2], expected[2])


def test_seeds_from_2_32_to_2_63_seed_numpy_distinctly():
    draws = []
    for seed in (0, 1, 2**32, 2**32 + 1, 2**33, 2**63 - 1):
        set_rng_seed(seed)
        draws.append(tuple(np.random.rand(4)))
    assert len(set(draws)) == len(draws)
    assert numpy_seed(2**32) == [0, 1] and numpy_seed(2**63 - 1) == [2**32 - 1, 2**31 - 1]


def test_train_accepts_a_seed_of_2_32(tmp_path, capsys):
    argv = ["train", *TINY, "--runs-dir", str(tmp_path), "--name", "s", "--seed", str(2**32)]
    assert _code(argv) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert json.loads((tmp_path / "s" / "config.json").read_text())["train"]["seed"] == 2**32


# ------------------------------------------------------------------ 3. output encodings


def test_list_shows_a_name_its_output_encoding_cannot_as_an_escape(base_run, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(base_run, runs / "été-😀")
    env = dict(os.environ, PYTHONIOENCODING="ascii", PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run(
        [sys.executable, "-m", "pyro_vae", "list", str(runs)],
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"Traceback" not in proc.stderr
    assert b"\\xe9t\\xe9-\\U0001f600" in proc.stdout


# ------------------------------------------------------------------ 4. report


def test_report_refuses_a_baseline_whose_best_mixture_is_none_of_its_rows(run, capsys):
    base = json.loads((run / "baseline.json").read_text())
    for row in base["mixtures"]:
        row["model"] = "x\n# heading\n[click](javascript:alert(1))"
    (run / "baseline.json").write_text(json.dumps(base))
    assert _code(["report", str(run), "--no-figures", "--quiet"]) == 1
    line = _error(capsys)
    assert "baseline.json" in line and "names none of the mixtures" in line


# ------------------------------------------------------------------ 5. checkpoint weights

WEIGHTS = {
    "sparse": lambda w: w.to_sparse(),
    "float64": lambda w: w.double(),
    "int64": lambda w: w.long(),
    "complex64": lambda w: w.to(torch.complex64),
}


@pytest.mark.parametrize("kind", list(WEIGHTS))
def test_a_weight_that_is_not_a_dense_tensor_of_its_dtype_is_refused(run, capsys, kind):
    key = "decoder.2.weight"

    def edit(state):
        state["model"][key] = WEIGHTS[kind](state["model"][key])

    _edit_checkpoint(run, edit)
    assert _code(["evaluate", str(run), "--num-samples", "3", "--quiet"]) == 1
    line = _error(capsys)
    assert repr(key) in line and "only a dense float32 tensor of shape" in line
    assert (kind.removeprefix("sparse") or "sparse") in line


def test_a_resume_refuses_a_float64_weight_before_rewriting_anything(run, capsys):
    def edit(state):
        state["model"]["decoder.2.weight"] = state["model"]["decoder.2.weight"].double()

    _edit_checkpoint(run, edit)
    before = _snapshot(run)
    assert _code(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 1
    assert "float64" in _error(capsys)
    assert _snapshot(run) == before


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "{run}", "--num-samples", "3", "--quiet"],
        ["figures", "{run}", "--quiet"],
        ["train", "--resume", "{run}", "--epochs", "2", "--quiet"],
        ["train", "--resume", "{run}", "--epochs", "1", "--quiet"],  # complete: nothing to do
    ],
    ids=["evaluate", "figures", "resume", "resume-complete"],
)
def test_an_image_shape_of_0x0_is_refused(run, capsys, argv):
    _edit_checkpoint(run, lambda state: state.update(image_shape=[0, 0]))
    before = _snapshot(run)
    assert _code([a.format(run=run) for a in argv]) == 1
    line = _error(capsys)
    assert "checkpoint.pt" in line and "image_shape" in line and "[0, 0]" in line
    assert _snapshot(run) == before


# ------------------------------------------------------------------ 6. baseline components


def test_run_refuses_more_baseline_components_than_training_images(tmp_path, capsys):
    argv = ["run", *TINY, "--num-samples", "3", "--baseline-components", "1", "5000"]
    assert _code([*argv, "--runs-dir", str(tmp_path / "runs"), "--name", "r"]) == 2
    line = _error(capsys)
    assert "--baseline-components 5000" in line and "1197" in line  # digits' training images
    assert not (tmp_path / "runs").exists()  # refused before a run directory exists


# ------------------------------------------------------------------ 7. IDX labels


def test_idx_labels_outside_the_ten_classes_are_refused(tmp_path, capsys):
    data = tmp_path / "data"
    make_idx_files(data)
    write_idx(data / "train-labels-idx1-ubyte.gz", torch.full((120,), 255, dtype=torch.uint8))
    with pytest.raises(DataFormatError, match=r"train-labels-idx1-ubyte.gz: labels must be 0\.\.9"):
        load_dataset("mnist", data, download=False)
    argv = ["train", *TINY, "--dataset", "mnist", "--data-dir", str(data), "--no-download"]
    assert _code([*argv, "--runs-dir", str(tmp_path / "runs")]) == 1
    line = _error(capsys)
    assert "train-labels-idx1-ubyte.gz" in line and "0..9" in line and "255" in line


# ------------------------------------------------------------------ 8. mixtures


def test_figures_refuses_a_saved_mixture_of_a_bogus_kind_even_when_not_the_best(run, capsys):
    path = run / "baseline_mixtures.pt"
    state = torch.load(path, weights_only=True)
    other = next(m for m in state["mixtures"] if m["n_components"] != state["best"])
    other["kind"] = "subprocess.Popen"
    torch.save(state, path)
    assert _code(["figures", str(run), "--quiet"]) == 1
    line = _error(capsys)
    assert "baseline_mixtures.pt" in line and "unknown kind ('subprocess.Popen'" in line


# ------------------------------------------------------------------ 9. what passed in silence


def test_a_config_without_a_format_is_refused(run, capsys):
    config = json.loads((run / "config.json").read_text())
    del config["format"]
    (run / "config.json").write_text(json.dumps(config))
    assert _code(["evaluate", str(run), "--num-samples", "3", "--quiet"]) == 2
    line = _error(capsys)
    assert "config.json: no format field" in line


def test_evaluate_replaces_a_linked_evaluation_file_and_says_so(run, outside, capsys):
    (run / "evaluation.json").unlink()
    (run / "evaluation.json").symlink_to(outside / "notes.json")
    assert _code(["evaluate", str(run), "--num-samples", "3", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "evaluation.json is a symbolic link, not followed" in err
    assert not (run / "evaluation.json").is_symlink()
    assert SECRET not in (run / "evaluation.json").read_text()
    assert json.loads((outside / "notes.json").read_text())["password"] == SECRET


def test_resume_replaces_a_linked_metrics_file_and_says_so(run, outside, capsys):
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to(outside / "notes.json")
    assert _code(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "metrics.jsonl is a symbolic link, not followed" in err
    assert not (run / "metrics.jsonl").is_symlink()
    assert [json.loads(r)["epoch"] for r in (run / "metrics.jsonl").read_text().splitlines()] == [
        1,
        2,
    ]
    assert json.loads((outside / "notes.json").read_text())["password"] == SECRET


def test_resume_refuses_a_metrics_directory_before_rewriting_anything(run, capsys):
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").mkdir()
    before = _snapshot(run)
    assert _code(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 1
    assert "metrics.jsonl: refused: not a regular file" in _error(capsys)
    assert _snapshot(run) == before


def test_report_never_opens_a_linked_points_file_it_does_not_need(run, base_run, outside, capsys):
    other = shutil.copytree(base_run, run.parent / "other")
    points = next(run.glob("evaluation_*_points.pt"))
    points.unlink()
    points.symlink_to(outside / "notes.json")
    assert _code(["report", str(run), "--no-figures", "--quiet"]) == 0
    assert SECRET not in (run / "report.md").read_text()
    assert SECRET not in (run / "report.html").read_text()
    capsys.readouterr()
    assert _code(["compare", str(other), str(run)]) == 1  # compare, which reads it, refuses it
    assert "symbolic link" in _error(capsys)


def test_a_huge_sparse_lock_file_is_never_read(run, capsys):
    with open(run / ".lock", "wb") as f:
        f.truncate(10 << 30)  # 10 GB of nothing: the lock's contents are never read
    assert _code(["evaluate", str(run), "--num-samples", "3", "--quiet"]) == 0
    assert (run / ".lock").stat().st_size == 10 << 30
