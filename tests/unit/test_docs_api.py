"""The API reference (docs/api.md) covers every public name, and only public names."""

import re

from helpers import REPO

import pyro_vae

API_PAGE = (REPO / "docs" / "api.md").read_text()


def listed_names() -> list[str]:
    """The names in the page's autosummary lists (indented lines under ``.. autosummary::``)."""
    names = []
    for block in re.findall(r"\.\. autosummary::\n((?:   .*\n|\n)+)", API_PAGE):
        names += [line.strip() for line in block.splitlines() if re.match(r"   \w+$", line)]
    return names


def test_every_public_name_has_a_reference_entry():
    missing = sorted(set(pyro_vae.__all__) - set(listed_names()))
    assert not missing, f"add to docs/api.md: {missing}"


def test_the_reference_lists_only_public_names_once():
    names = listed_names()
    assert len(names) == len(set(names)), "a name is listed twice"
    assert set(names) <= set(pyro_vae.__all__), set(names) - set(pyro_vae.__all__)


def test_every_listed_name_imports():
    for name in listed_names():
        assert getattr(pyro_vae, name) is not None, name
