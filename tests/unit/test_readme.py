"""The README and the documentation pages (docs/**/*.md) are the contract: their Python
examples run, their options and commands exist, their links resolve."""

import re

import pytest
from helpers import REPO

from pyro_vae.cli import build_parser

README = (REPO / "README.md").read_text()
PAGES = {p.relative_to(REPO).as_posix(): p.read_text() for p in sorted(REPO.glob("docs/**/*.md"))}
MANUAL = "\n".join([README, *PAGES.values()])
PYTHON_BLOCKS = [
    (name, block)
    for name, text in {"README.md": README, **PAGES}.items()
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.S)
]


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_examples_run(index, capsys):
    name, block = PYTHON_BLOCKS[index]
    exec(compile(block, f"{name} python block {index}", "exec"), {})
    if "print(" in block:
        assert "ELBO" in capsys.readouterr().out  # an example prints what it computed


def test_there_are_examples():
    assert len(PYTHON_BLOCKS) >= 2
    assert any(name == "README.md" for name, _ in PYTHON_BLOCKS)  # the own-part example


def test_every_option_in_the_manual_exists():
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices  # run, train, figures, datasets
    known = {opt for p in [parser, *sub.values()] for a in p._actions for opt in a.option_strings}
    mentioned = set(re.findall(r"`(--[a-z][a-z-]+)", MANUAL))
    for line in MANUAL.splitlines():  # the options of every command line shown, too
        if line.startswith("pyro-vae ") and "error:" not in line:
            mentioned |= set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", line.split("#")[0]))
    assert mentioned and mentioned <= known, mentioned - known


def test_every_sub_command_is_documented():
    parser = build_parser()
    for name in parser._subparsers._group_actions[0].choices:
        assert f"pyro-vae {name}" in README  # the README lists every command
        assert f"pyro-vae {name}" in PAGES["docs/guide/command-line.md"]


def test_every_test_file_the_manual_names_exists():
    named = set(re.findall(r"(?<![\w/.])tests/[\w/]+\.py", MANUAL))
    assert named and {p for p in named if not (REPO / p).is_file()} == set()


def test_the_readmes_links_resolve():
    """Every relative link of the README names a file or folder of the checkout, and every
    anchor in it a heading of that page (as MyST and GitHub spell them)."""
    links = re.findall(r"\]\(([^)#:]+)(?:#([\w-]+))?\)", README)
    assert len(links) >= 10
    for path, anchor in links:
        target = REPO / path
        assert target.exists(), path
        if anchor:
            headings = re.findall(r"^#+ (.*)$", target.read_text(), flags=re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h.lower()).strip().replace(" ", "-") for h in headings}
            assert anchor in slugs, (path, anchor)
