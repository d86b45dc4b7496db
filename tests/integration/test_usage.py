"""The parser answers at once and in one line: ``--help``, ``--version`` and usage errors load
no torch, Pyro, matplotlib or scikit-learn, and a misspelled word gets a "did you mean"."""

import json
import subprocess
import sys

import pytest
from helpers import REPO

from pyro_vae.cli import main

HEAVY = ("torch", "pyro", "matplotlib", "sklearn", "numpy", "tqdm")

PROBE = """
import json, sys
from pyro_vae.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads({heavy!r})))
print("HEAVY=" + json.dumps(heavy))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["run", "--help"],
        ["train", "--help"],
        ["run", "--latnt-dim", "3"],
        ["rn"],
        ["run", "--latent-dim", "0"],
    ],
)
def test_help_version_and_usage_errors_import_no_heavy_library(argv):
    script = PROBE.replace("{heavy!r}", repr(json.dumps(HEAVY)))
    proc = subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=60
    )
    marker = [line for line in proc.stdout.splitlines() if line.startswith("HEAVY=")]
    assert marker, proc.stdout + proc.stderr
    assert json.loads(marker[-1][len("HEAVY=") :]) == []


def test_python_m_help_imports_no_torch():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pyro_vae", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "usage: pyro-vae" in proc.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert "pyro_vae.cli.dispatch" in imported  # the probe sees the package's imports
    assert not {"torch", "pyro", "matplotlib"} & imported


@pytest.fixture(autouse=True)
def _no_command_runs(monkeypatch):
    """A case that parses after all fails here instead of starting a run."""
    import pyro_vae.cli.commands as cli

    def parsed(args):
        raise AssertionError(f"parsed without a usage error: {args}")

    for name in dir(cli):
        if name.startswith("cmd_"):
            monkeypatch.setattr(cli, name, parsed)


def usage_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "usage:" not in err, err  # one line
    return err


@pytest.mark.parametrize(
    "argv,hint",
    [
        (["run", "--latnt-dim", "3"], "(did you mean --latent-dim?)"),
        (["train", "--epohcs", "3"], "(did you mean --epochs?)"),
        (["run", "--num-smaples=5"], "(did you mean --num-samples?)"),
        (["evaluate", "RUN", "--num-sampels", "5"], "(did you mean --num-samples?)"),
        (["rnu"], "(did you mean 'run'?)"),
        (["run", "--dataset", "minst"], "(did you mean 'mnist'?)"),
        (["run", "--elbo", "iwea"], "(did you mean 'iwae'?)"),
    ],
)
def test_a_misspelled_word_gets_a_did_you_mean(argv, hint, capsys):
    err = usage_error(argv, capsys)
    assert hint in err
    assert err.startswith(f"pyro-vae{' ' + argv[0] if argv[0] != 'rnu' else ''}: error: ")
    assert err.rstrip().endswith("--help")


def test_two_misspelled_options_each_get_theirs(capsys):
    err = usage_error(["run", "--latnt-dim", "3", "--epohcs", "3"], capsys)
    assert "--latent-dim for --latnt-dim" in err and "--epochs for --epohcs" in err


@pytest.mark.parametrize(
    "argv",
    [["run", "--zzzzzzzz"], ["qqqqq"], ["run", "--dataset", "cifar"], ["run", "--latent-dim", "0"]],
)
def test_no_suggestion_when_nothing_is_close(argv, capsys):
    assert "did you mean" not in usage_error(argv, capsys)


def test_an_option_of_another_command_is_not_suggested(capsys):
    # --baseline-components is an option of run, not of train
    err = usage_error(["train", "--baseline-component", "1"], capsys)
    assert "--baseline-components" not in err.split("error:")[1].split("(")[-1]


def test_the_light_name_lists_match_the_registries():
    from pyro_vae.app.part_import import BUILTINS
    from pyro_vae.config import names as data_names
    from pyro_vae.config.names import ACTIVATION_NAMES, BUILTIN_PARTS, ELBO_NAMES, PART_KINDS
    from pyro_vae.data.datasets import DATASETS
    from pyro_vae.infer.objectives import ELBOS
    from pyro_vae.model.nets import ACTIVATIONS

    assert set(data_names.DATASET_NAMES) == set(DATASETS)
    assert set(ELBO_NAMES) == set(ELBOS)
    assert set(ACTIVATION_NAMES) == set(ACTIVATIONS)
    assert set(PART_KINDS) == set(BUILTINS) == set(BUILTIN_PARTS)
    for kind, names in BUILTIN_PARTS.items():
        assert set(names) == set(BUILTINS[kind]), kind


def test_the_documented_usage_errors_are_what_the_program_says(capsys):
    import re
    import shlex

    pages = [REPO / "README.md", *sorted(REPO.glob("docs/**/*.md"))]
    manual = "\n".join(page.read_text() for page in pages)
    shown = re.findall(r"^\$ pyro-vae (.*)\n(pyro-vae.*: error: .*)$", manual, flags=re.M)
    assert len(shown) >= 2
    for command, message in shown:
        assert usage_error(shlex.split(command), capsys).rstrip("\n") == message
