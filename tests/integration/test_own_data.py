"""A user's own data through the whole command line (issue 27's three sessions): a folder of
images, a CSV of continuous measurements, a matrix of counts; each trains, evaluates, compares
two models and writes a report. A run's data file is recorded (path, SHA-256, shape, kind,
split seed), reloaded by every later command, refused when it changed, and a foreign
config.json's path is only ever read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import exit_code, file_stamps, tiny
from PIL import Image

TINY = [*tiny(epochs=1, hidden=16, latent_dim=2), "--batch-size", "16", "--device", "cpu"]
LABELS = ["--label-column", "cultivar"]
COUNTS_LIKELIHOOD = "poisson"


# ------------------------------------------------------------------------------ the files
def image_folder(root: Path, per_class: int = 30, size: int = 8) -> Path:
    """Colour PNGs in two class folders: discs and squares of random colours."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for name in ("discs", "squares"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            cy, cx = rng.integers(2, size - 2, 2)
            r = int(rng.integers(1, 3))
            if name == "discs":
                mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            else:
                mask = (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
            pixels = np.zeros((size, size, 3), np.uint8)
            pixels[mask] = rng.integers(80, 256, 3)
            Image.fromarray(pixels).save(root / name / f"{i:03d}.png")
    return root


def wine_csv(path: Path) -> Path:
    """scikit-learn's wine measurements (bundled, offline), standardized, with the cultivar."""
    from sklearn.datasets import load_wine

    wine = load_wine()
    x = (wine.data - wine.data.mean(0)) / wine.data.std(0)
    names = np.array(wine.target_names)[wine.target]
    lines = [",".join([*wine.feature_names, "cultivar"])]
    lines += [",".join(f"{v:.5f}" for v in row) + f",{c}" for row, c in zip(x, names, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def count_matrix(path: Path, n: int = 120, genes: int = 12) -> Path:
    """A Poisson count matrix with two groups of rows of different rates."""
    rng = np.random.default_rng(0)
    rates = np.where(np.arange(n)[:, None] < n // 2, 2.0, 6.0) * rng.gamma(2.0, 0.5, (1, genes))
    np.save(path, rng.poisson(rates).astype(np.int64))
    return path


# ------------------------------------------------------------------------------ a session
def session(tmp_path: Path, data: Path, *extra: str) -> tuple[Path, Path]:
    """train two models on ``data``, evaluate both, compare them, report on the first."""
    runs = tmp_path / "runs"
    base = ["train", *TINY, "--dataset", str(data), *extra, "--runs-dir", str(runs)]
    assert exit_code([*base, "--name", "a"]) == 0
    assert exit_code([*base, "--prior", "normal", "--name", "b"]) == 0
    for name in ("a", "b"):
        argv = ["evaluate", str(runs / name), "--num-samples", "20", "--device", "cpu"]
        assert exit_code([*argv, "--quiet"]) == 0
    assert exit_code(["compare", str(runs / "a"), str(runs / "b")]) == 0
    assert exit_code(["report", str(runs / "a"), "--device", "cpu", "--quiet"]) == 0
    return runs / "a", runs / "b"


def recorded(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())["data"]


def test_a_folder_of_colour_images(tmp_path, capsys):
    folder = image_folder(tmp_path / "shapes")
    a, b = session(tmp_path, folder)
    out = capsys.readouterr().out
    assert "paired difference to a" in out and " b " in out
    data = recorded(a)
    assert data["dataset"] == str(folder) and data["data_shape"] == [3, 8, 8]
    assert data["data_kind"] == "levels" and data["split_seed"] == 0
    assert len(data["data_sha256"]) == 64 and data["pixels"] == "grey"
    figures = {p.name for p in (a / "figures").iterdir()}
    assert {"reconstructions.png", "samples.png", "manifold.png", "latent_space.png"} <= figures
    image = np.asarray(Image.open(a / "figures" / "samples.png").convert("RGB")).astype(int)
    assert (image.max(-1) - image.min(-1)).max() > 60  # colour, not grey
    assert "levels data, 3x8x8 values per example" in (a / "report.md").read_text()


def test_a_csv_of_continuous_measurements(tmp_path, capsys):
    csv = wine_csv(tmp_path / "wine.csv")
    argv = ["train", *TINY, "--dataset", str(csv), "--label-column", "cultivar"]
    assert exit_code([*argv, "--runs-dir", str(tmp_path), "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert "continuous data" in err and "'bernoulli'" in err and "gaussian-learned" in err
    extra = ("--label-column", "cultivar", "--likelihood", "gaussian-learned")
    a, _ = session(tmp_path, csv, *extra)
    assert "paired difference to a" in capsys.readouterr().out
    data = recorded(a)
    assert data["data_kind"] == "continuous" and data["pixels"] == "as-is"
    assert data["data_shape"] == [13] and data["label_column"] == "cultivar"
    figures = {p.name for p in (a / "figures").iterdir()}
    assert figures == {"reconstructions.png", "samples.png", "latent_space.png", "elbo_curves.png"}
    report = (a / "report.md").read_text()
    assert "feature by feature" in report and "continuous data, 13 values" in report


def test_a_count_matrix(tmp_path, capsys):
    counts = count_matrix(tmp_path / "counts.npy")
    a, _ = session(tmp_path, counts, "--likelihood", COUNTS_LIKELIHOOD)
    data = recorded(a)
    assert data["data_kind"] == "counts" and data["data_shape"] == [12]
    expected = "counts" if COUNTS_LIKELIHOOD == "poisson" else "as-is"
    assert data["pixels"] == expected
    assert (a / "figures" / "samples.png").is_file() and (a / "report.md").is_file()


def test_a_changed_data_file_is_refused_naming_it(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    csv = wine_csv(tmp_path / "data" / "wine.csv")
    original = tmp_path / "kept"
    original.mkdir()
    shutil.copy(csv, original / "wine.csv")
    argv = ["train", *TINY, "--dataset", str(csv), "--likelihood", "gaussian", *LABELS]
    assert exit_code([*argv, "--runs-dir", str(tmp_path), "--name", "r"]) == 0
    run = tmp_path / "r"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines[:-1]) + "\n")  # one row fewer
    evaluate = ["evaluate", str(run), "--num-samples", "5", "--device", "cpu", "--quiet"]
    for argv in (
        evaluate,
        ["figures", str(run), "--device", "cpu", "--quiet"],
        ["train", "--resume", str(run), "--epochs", "2", "--quiet"],
    ):
        assert exit_code(argv) == 1, argv
        err = capsys.readouterr().err
        assert f"the data file {csv} changed since the run was trained" in err
        assert "SHA-256" in err and len(err.strip().splitlines()) == 1
    assert not (run / "evaluation.json").exists()
    assert exit_code([*evaluate, "--data-dir", str(original)]) == 0  # the original, elsewhere
    assert (run / "evaluation.json").exists()


def test_a_foreign_config_path_is_only_read(tmp_path, capsys):
    csv = wine_csv(tmp_path / "wine.csv")
    argv = ["train", *TINY, "--dataset", str(csv), "--likelihood", "gaussian", *LABELS]
    assert exit_code([*argv, "--runs-dir", str(tmp_path), "--name", "r"]) == 0
    run = tmp_path / "r"
    config = json.loads((run / "config.json").read_text())
    elsewhere = tmp_path / "elsewhere"
    config["data"]["dataset"] = str(elsewhere / "deep" / "wine.csv")
    config["data"]["test_file"] = str(elsewhere / "test.csv")
    (run / "config.json").write_text(json.dumps(config))
    evaluate = ["evaluate", str(run), "--num-samples", "5", "--device", "cpu", "--quiet"]
    assert exit_code(evaluate) == 1
    assert "no such file or directory" in capsys.readouterr().err
    assert not elsewhere.exists()  # nothing created where the foreign file points
    elsewhere.mkdir()  # a directory of someone's, with the file the config names
    shutil.copy(csv, elsewhere / "x.csv")
    config["data"]["dataset"] = str(elsewhere / "x.csv")
    config["data"]["test_file"] = None
    (run / "config.json").write_text(json.dumps(config))
    before = file_stamps(elsewhere)
    assert exit_code(evaluate) == 0
    assert file_stamps(elsewhere) == before and sorted(elsewhere.iterdir()) == [elsewhere / "x.csv"]


@pytest.mark.parametrize(
    "argv,code,words",
    [
        (["--dataset", "cifar"], 2, "invalid choice"),
        (["--label-column", "y"], 2, "--label-column belongs to a data file"),
        (["--dataset", "nowhere/x.csv"], 1, "no such file or directory"),
        (["--pixels", "as-is"], 2, "as-is is for counts and continuous data"),
    ],
)
def test_data_options_refused_with_one_line(tmp_path, capsys, argv, code, words):
    assert exit_code(["train", *TINY, *argv, "--runs-dir", str(tmp_path)]) == code
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_a_kind_the_values_do_not_fit_is_refused(tmp_path, capsys):
    csv = wine_csv(tmp_path / "wine.csv")
    argv = ["train", *TINY, "--dataset", str(csv), "--label-column", "cultivar"]
    assert exit_code([*argv, "--data-kind", "counts", "--runs-dir", str(tmp_path / "r")]) == 1
    assert "kind 'counts' needs non-negative integers" in capsys.readouterr().err
