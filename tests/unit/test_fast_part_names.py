"""A mistyped part name is refused while the options are read, before torch is loaded, with the
closest name (issue 30, item 7); ``list`` and ``compare`` give advice their own options take."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import exit_code

PROBE = """
import sys
from pyro_vae.cli import main
try:
    main({argv!r})
except SystemExit as exc:
    print("exit", exc.code)
print("torch loaded" if "torch" in sys.modules else "no torch")
"""


@pytest.mark.parametrize(
    ("option", "typo", "meant"),
    [("--prior", "vampp", "vamp"), ("--guide", "diagonl", "diagonal"), ("--decoder", "mpl", "mlp")],
)
def test_a_mistyped_part_is_refused_before_torch_with_the_closest_name(option, typo, meant):
    argv = ["train", option, typo, "--runs-dir", "never-written"]
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True
    )
    assert done.stdout.split("\n")[:2] == ["exit 2", "no torch"], done.stdout + done.stderr
    assert f"argument {option}: {typo!r} is not one of" in done.stderr
    assert f"did you mean {meant!r}?" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_import_path_and_a_builtin_name_pass_the_reader(capsys):
    from pyro_vae.config.constraints import part_name_reader

    read = part_name_reader("likelihood")
    assert read("gaussian") == "gaussian"
    assert read("my.module:MyLikelihood") == "my.module:MyLikelihood"  # found later, if at all
    assert exit_code(["train", "--likelihood", "nothing-like-it", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "did you mean" not in err and "bernoulli, gaussian, gaussian-learned" in err


def test_list_advises_what_list_takes(tmp_path, capsys):
    assert exit_code(["list", str(tmp_path / "nowhere")]) != 0
    err = capsys.readouterr().err
    assert "--runs-dir you trained into" not in err
    assert "train or run wrote into" in err
