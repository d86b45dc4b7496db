"""Shared fixtures. Tests never touch the network or the user's cache directory."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pyro
import pytest
import torch

from pyro_vae import load_dataset, write_idx

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


def make_idx_files(
    directory: Path, n_train: int = 120, n_test: int = 30, gz: bool = True, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Write a small MNIST-like data set (28x28 uint8 images, labels 0-9) as IDX files."""
    g = torch.Generator().manual_seed(seed)
    tensors = {
        "train-images-idx3-ubyte": torch.randint(
            0, 256, (n_train, 28, 28), generator=g, dtype=torch.uint8
        ),
        "train-labels-idx1-ubyte": torch.randint(0, 10, (n_train,), generator=g, dtype=torch.uint8),
        "t10k-images-idx3-ubyte": torch.randint(
            0, 256, (n_test, 28, 28), generator=g, dtype=torch.uint8
        ),
        "t10k-labels-idx1-ubyte": torch.randint(0, 10, (n_test,), generator=g, dtype=torch.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for stem, tensor in tensors.items():
        write_idx(directory / (stem + (".gz" if gz else "")), tensor)
    return tensors


@pytest.fixture
def idx_dir(tmp_path):
    """A flat directory holding small gzip-compressed MNIST-format IDX files."""
    directory = tmp_path / "mnist-files"
    tensors = make_idx_files(directory)
    return directory, tensors
