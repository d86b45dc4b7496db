"""The README is the contract: its Python examples run, and its options exist."""

import re

import pytest
from helpers import REPO

from pyro_vae.cli import build_parser

README = (REPO / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_examples_run(index, capsys):
    block = PYTHON_BLOCKS[index]
    exec(compile(block, f"README.md python block {index}", "exec"), {})
    if "print(" in block:
        assert "ELBO" in capsys.readouterr().out  # an example prints what it computed


def test_there_are_examples():
    assert len(PYTHON_BLOCKS) >= 2


def test_every_option_in_the_readme_exists():
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices  # run, train, figures, datasets
    known = {opt for p in [parser, *sub.values()] for a in p._actions for opt in a.option_strings}
    mentioned = set(re.findall(r"`(--[a-z][a-z-]+)", README))
    assert mentioned and mentioned <= known, mentioned - known


def test_every_sub_command_is_documented():
    parser = build_parser()
    for name in parser._subparsers._group_actions[0].choices:
        assert f"pyro-vae {name}" in README


def test_every_test_file_the_readme_names_exists():
    named = set(re.findall(r"(?<![\w/.])tests/[\w/]+\.py", README))
    assert named and {p for p in named if not (REPO / p).is_file()} == set()
