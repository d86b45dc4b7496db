"""The convolutional parts through the command line: a run trained with ``--encoder conv
--decoder conv`` records them, and evaluate, resume, figures, report and compare rebuild the
same model from its directory; colour images work; data that are not images are refused with
one line, exit status 2, before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import exit_code, tiny
from PIL import Image

from pyro_vae import ConvDecoder, ConvEncoder, load_vae

TINY = [*tiny(epochs=1, hidden=16, latent_dim=3), "--batch-size", "64", "--device", "cpu"]
CONV = ["--encoder", "conv", "--decoder", "conv"]


def test_train_evaluate_resume_figures_report_on_digits(tmp_path, capsys):
    runs = tmp_path / "runs"
    base = ["train", *TINY, "--dataset", "digits", "--runs-dir", str(runs)]
    assert exit_code([*base, *CONV, "--name", "conv"]) == 0
    assert exit_code([*base, "--name", "mlp"]) == 0
    run = runs / "conv"
    model = json.loads((run / "config.json").read_text())["model"]
    assert model["decoder"] == "conv" and model["guide_kwargs"] == {"encoder": "conv"}
    _, _, vae = load_vae(run)
    assert isinstance(vae.encoder.net, ConvEncoder) and isinstance(vae.decoder, ConvDecoder)

    evaluate = ["evaluate", str(run), "--num-samples", "20", "--images", "30", "--quiet"]
    assert exit_code([*evaluate, "--device", "cpu"]) == 0
    assert exit_code(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 0
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    assert exit_code([*evaluate, "--device", "cpu"]) == 0  # the resumed model, rebuilt again
    assert exit_code(["figures", str(run)]) == 0
    assert (run / "figures" / "samples.png").is_file()
    assert exit_code(["report", str(run), "--device", "cpu", "--quiet"]) == 0
    assert "conv" in (run / "report.md").read_text()
    mlp_eval = ["evaluate", str(runs / "mlp"), "--num-samples", "20", "--images", "30"]
    assert exit_code([*mlp_eval, "--quiet", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert exit_code(["compare", str(run), str(runs / "mlp")]) == 0
    assert "paired difference" in capsys.readouterr().out


def test_colour_images_with_a_vampprior(tmp_path):
    """3-channel 9x7 images (odd sides) from a folder; the VampPrior's pseudo-inputs go
    through the convolutional encoder."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(40):
        pixels = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:02d}.png")
    runs = tmp_path / "runs"
    argv = [
        "train",
        *TINY,
        "--batch-size",
        "16",
        "--dataset",
        str(folder),
        *CONV,
        "--prior",
        "vamp",
    ]
    assert exit_code([*argv, "--pseudo-inputs", "5", "--runs-dir", str(runs), "--name", "c"]) == 0
    data = json.loads((runs / "c" / "config.json").read_text())["data"]
    assert data["data_shape"] == [3, 9, 7]
    _, _, vae = load_vae(runs / "c")
    assert vae.decoder.image_shape == (3, 9, 7)


@pytest.mark.parametrize("option", ["encoder", "decoder"])
def test_refused_on_a_table(tmp_path, capsys, option):
    rows = np.random.default_rng(0).normal(size=(40, 5))
    csv = tmp_path / "table.csv"
    np.savetxt(csv, rows, delimiter=",", header="a,b,c,d,e", comments="")
    runs = tmp_path / "runs"
    argv = ["train", *TINY, "--dataset", str(csv), "--likelihood", "gaussian", f"--{option}"]
    assert exit_code([*argv, "conv", "--runs-dir", str(runs), "--name", "t"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"--{option} conv needs images" in err and f"use --{option} mlp" in err
    assert "vectors of 5 values" in err
    assert not (runs / "t").exists()
