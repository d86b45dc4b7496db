"""Fixtures shared by every stage (unit, integration, e2e; each folder's conftest.py sets its
marker). Tests never touch the network or the user's cache directory."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pyro
import pytest
from helpers import make_idx_files

from pyro_vae import load_dataset

# Downloads and the cache go to a throw-away directory for the whole session.
os.environ["PYRO_VAE_DATA"] = tempfile.mkdtemp(prefix="pyro-vae-test-cache-")
os.environ.setdefault("MPLBACKEND", "Agg")
# The allow-list of trusted part modules (pyro_vae.app.trust) is never the user's own.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="pyro-vae-test-config-")
os.environ.pop("PYRO_VAE_TRUST", None)


@pytest.fixture(autouse=True)
def _fresh_trust(tmp_path_factory, monkeypatch):
    """Each test starts with nothing vouched for: an empty allow-list of its own, and no
    module vouched by an earlier test in this process."""
    from pyro_vae.app import trust

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
    monkeypatch.delenv(trust.ENV_VAR, raising=False)
    with trust.vouching([]):
        trust._vouched.clear()
        yield


@pytest.fixture(autouse=True)
def _fresh_pyro_state():
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    yield
    pyro.clear_param_store()


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture
def idx_dir(tmp_path):
    """A flat directory holding small gzip-compressed MNIST-format IDX files."""
    directory = tmp_path / "mnist-files"
    tensors = make_idx_files(directory)
    return directory, tensors


STAGES = ("unit", "integration", "e2e")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test lies in one stage's folder, whose conftest.py marks it; a stage's marker written
    on a test of another stage's folder (an ``e2e`` test left in tests/unit) is an error."""
    root = Path(__file__).parent
    for item in items:
        folder = item.path.relative_to(root).parts[0]
        if folder not in STAGES:
            raise pytest.UsageError(f"{item.nodeid}: tests live in tests/{{{','.join(STAGES)}}}/")
        written = {m.name for m in item.iter_markers() if m.name in STAGES} - {folder}
        if written:
            raise pytest.UsageError(
                f"{item.nodeid} is marked {written} but lies in tests/{folder}/"
            )
