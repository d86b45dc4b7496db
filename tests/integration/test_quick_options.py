"""A quick look without the whole cost (issue 30, item 8): ``evaluate --images N`` scores only
the split's first N images, kept under its own key and paired only with the same images; ``run
--autoencoder-epochs N`` shortens (0: skips) the plain autoencoder of the interpolation figure."""

from __future__ import annotations

import json

import torch
from helpers import exit_code, tiny, train_tiny

from pyro_vae.app.evaluations import read_evaluations
from pyro_vae.app.runs import RunDirectory
from pyro_vae.cli import main


def test_evaluate_a_few_images_under_their_own_key(tmp_path, capsys):
    run = train_tiny(tmp_path, "r", tiny(epochs=1, latent_dim=2))
    assert main(["evaluate", str(run), "--num-samples", "3", "--images", "10", "--quiet"]) == 0
    assert main(["evaluate", str(run), "--num-samples", "3", "--quiet"]) == 0
    estimates = read_evaluations(RunDirectory(run)).estimates
    assert set(estimates) == {"is-K3-first10", "is-K3"}
    few, whole = estimates["is-K3-first10"], estimates["is-K3"]
    assert (few.num_examples, few.first_images) == (10, 10)
    assert whole.first_images is None and whole.num_examples == 300
    assert few.data_sha256 != whole.data_sha256  # never paired with the whole split
    points = torch.load(run / "evaluation_is-K3-first10_points.pt", weights_only=True)
    assert points["log_px"].shape == (10,)
    assert (
        "first_images"
        in json.loads((run / "evaluation.json").read_text())["estimates"]["is-K3-first10"]
    )
    capsys.readouterr()
    assert exit_code(["evaluate", str(run), "--images", "301", "--quiet"]) == 2
    assert "the test split has 300 images" in capsys.readouterr().err
    assert exit_code(["evaluate", str(run), "--images", "0"]) == 2


def test_run_without_the_autoencoder_and_with_a_short_one(tmp_path):
    common = [*tiny(epochs=2, latent_dim=2), "--num-samples", "3", "--baseline-components"]
    common += ["--runs-dir", str(tmp_path)]
    assert main(["run", *common, "--name", "none", "--autoencoder-epochs", "0"]) == 0
    assert not (tmp_path / "none" / "autoencoder.pt").exists()
    assert not (tmp_path / "none" / "figures" / "interpolation.png").exists()
    assert (tmp_path / "none" / "report.html").is_file()
    assert main(["run", *common, "--name", "short", "--autoencoder-epochs", "1"]) == 0
    state = torch.load(tmp_path / "short" / "autoencoder.pt", weights_only=True)
    assert len(state["history"]) == 1
    assert (tmp_path / "short" / "figures" / "interpolation.png").is_file()
