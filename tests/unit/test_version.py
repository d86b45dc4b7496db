"""One version number: ``pyro_vae.__version__`` states it; the built package, ``--version``,
CHANGELOG.md and the README agree with it."""

from __future__ import annotations

import re

import pytest
from helpers import REPO

import pyro_vae
from pyro_vae.cli import main


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_the_package_metadata_reads_the_version_from_the_package():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]  # no second number
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "pyro_vae.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", pyro_vae.__version__)


def test_the_command_line_prints_it(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.split() == ["pyro-vae", pyro_vae.__version__]


def test_the_changelogs_newest_release_is_this_version():
    changelog = (REPO / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", changelog, flags=re.M)
    assert releases and releases[0] == pyro_vae.__version__
    assert releases == sorted(releases, key=_release, reverse=True)


def test_the_readme_and_docs_name_no_later_version():
    pages = [REPO / "README.md", *sorted(REPO.glob("docs/**/*.md"))]
    named = re.findall(r"pyro-vae (\d+\.\d+(?:\.\d+)?)\b", "\n".join(p.read_text() for p in pages))
    assert all(_release(v) <= _release(pyro_vae.__version__) for v in named), named
