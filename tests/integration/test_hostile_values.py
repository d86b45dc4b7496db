"""Values a foreign run holds that parse but cannot be what pyro-vae wrote, and seeds at the
declared bounds (issue 24, the second campaign): each is refused with one line, or works,
never a traceback.

* a standard error, a duration or an effective sample size below zero in a result file;
* a checkpoint or autoencoder tensor on PyTorch's ``meta`` device (a shape without values);
* a run seed of 2**32 or more, which scikit-learn's ``random_state`` refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny, train_tiny

from pyro_vae.app.checkpoint import load_checkpoint, save_checkpoint
from pyro_vae.cli import main
from pyro_vae.errors import CheckpointError
from pyro_vae.model.mixtures import GaussianMixture
from pyro_vae.rng import random_state
from pyro_vae.store.evaluation import ISEvaluation
from pyro_vae.store.fields import RecordError, number

TINY = tiny(latent_dim=2)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("values")
    train_tiny(root, "base", TINY)
    assert main(["evaluate", str(root / "base"), "--num-samples", "3", "--quiet"]) == 0
    return root / "base"


@pytest.fixture
def run(base_run, tmp_path) -> Path:
    copy = tmp_path / "runs" / "r"
    shutil.copytree(base_run, copy)
    return copy


@pytest.mark.parametrize(
    ("key", "value"),
    [("log_px_se", -1.0), ("ess_min", -3.0), ("seconds", -0.5), ("log_px_mc_se", -1e-9)],
)
def test_a_negative_spread_in_an_evaluation_is_refused(run, capsys, key, value):
    path = run / "evaluation.json"
    data = json.loads(path.read_text())
    (entry,) = data["estimates"].values()
    assert entry[key] >= 0  # what pyro-vae wrote
    entry[key] = value
    with pytest.raises(RecordError, match=key):
        ISEvaluation.from_json(entry)
    path.write_text(json.dumps(data))
    assert main(["report", str(run), "--no-figures", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "evaluation.json" in err and key in err and "Traceback" not in err


def test_a_bounded_number_field_says_its_bounds():
    spec = number(minimum=0, maximum=1).metadata["spec"]
    assert [spec.check(v) for v in (0, 0.5, 1, -1e-12, 1.5, float("nan"), True)] == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    assert spec.wanted == "a number from 0 to 1"


def _to_meta(state: dict, key: str) -> dict:
    state[key] = torch.empty_like(state[key], device="meta")
    return state


def test_a_meta_tensor_in_a_checkpoint_is_refused_by_the_loader(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"model": {"w": torch.empty(3, device="meta"), "b": torch.ones(2)}})
    with pytest.raises(CheckpointError, match="meta"):
        load_checkpoint(path)
    save_checkpoint(path, {"model": {"w": torch.zeros(3)}, "nested": [[{"x": torch.ones(1)}]]})
    assert load_checkpoint(path)["model"]["w"].device.type == "cpu"


@pytest.mark.parametrize("command", ["evaluate", "resume", "figures"])
def test_a_run_with_a_meta_weight_is_refused_by_every_command(run, capsys, command):
    checkpoint = run / "checkpoint.pt"
    state = load_checkpoint(checkpoint)
    first = next(iter(state["model"]))
    save_checkpoint(checkpoint, _to_meta(state["model"], first) and state)
    argv = {
        "evaluate": ["evaluate", str(run), "--num-samples", "3", "--quiet"],
        "resume": ["train", "--resume", str(run), "--epochs", "3", "--quiet"],
        "figures": ["figures", str(run), "--quiet"],
    }[command]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "meta" in err and "Traceback" not in err


def test_scikit_learn_gets_a_seed_it_takes_and_small_seeds_are_unchanged():
    assert random_state(7) == 7
    assert random_state(2**32 - 1) == 2**32 - 1
    big = random_state(2**32)
    other = random_state(2**33)
    assert isinstance(big, np.random.RandomState)
    assert big.randint(0, 2**31, 4).tolist() != other.randint(0, 2**31, 4).tolist()


@pytest.mark.parametrize("seed", [2**32, 2**63 - 1])
def test_a_mixture_fits_from_a_seed_beyond_32_bits(seed):
    x = torch.randn(60, 3)
    mixture = GaussianMixture(2, seed=seed).fit(x, max_iter=5)
    again = GaussianMixture(2, seed=seed).fit(x, max_iter=5)
    assert torch.equal(mixture.means, again.means)  # the seed still decides the start


def test_run_with_a_seed_of_two_to_the_32_fits_its_baseline(tmp_path, capsys):
    argv = ["run", *TINY, "--runs-dir", str(tmp_path), "--name", "big", "--seed", str(2**32)]
    argv += ["--num-samples", "3", "--baseline-components", "1"]
    assert main(argv) == 0, capsys.readouterr().err
    assert (tmp_path / "big" / "baseline.json").is_file()
