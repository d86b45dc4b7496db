"""A user's own data files (issue 27): real data nobody here wrote (scikit-learn's bundled
photos and tables) through every reader, the inferred kinds and their overrides, the seeded
split; the hostile files are in test_data_files_hostile.py."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_idx_files
from PIL import Image
from sklearn.datasets import (
    load_diabetes,
    load_digits,
    load_iris,
    load_sample_images,
    load_wine,
)

from pyro_vae.data.files import ArrayData, read_data_file, split, with_kind
from pyro_vae.errors import ConfigError, DataFormatError

CROP = 24


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    """scikit-learn's two bundled photos (427x640 RGB)."""
    bunch = load_sample_images()
    return {Path(f).stem: image for f, image in zip(bunch.filenames, bunch.images, strict=True)}


def crops(image: np.ndarray, n: int) -> list[np.ndarray]:
    """``n`` CROPxCROP pieces of a photo, each downscaled by 2 from a 2*CROP square."""
    out = []
    for k in range(n):
        piece = image[40 * k : 40 * k + 2 * CROP, 60 * k : 60 * k + 2 * CROP]
        out.append(piece.reshape(CROP, 2, CROP, 2, 3).mean(axis=(1, 3)).round().astype(np.uint8))
    return out


def save(array: np.ndarray, path: Path) -> None:
    Image.fromarray(array).save(path)


def write_table(path: Path, rows, header=None, delimiter=",") -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def counts_matrix() -> np.ndarray:
    return np.random.RandomState(0).poisson(np.linspace(0.5, 40, 12), size=(200, 12))


# ------------------------------------------------------------------------------- images
def test_a_folder_of_png_photos_with_class_subdirectories(tmp_path, photos):
    expected = []
    for name, image in sorted(photos.items()):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for k, piece in enumerate(crops(image, 3)):
            save(piece, tmp_path / "photos" / name / f"{k:02d}.png")
            expected.append(piece)
    data = read_data_file(tmp_path / "photos")
    assert data.format == "images" and data.kind == "levels" and data.levels == 256
    assert data.shape == (3, CROP, CROP) and data.values.dtype == torch.uint8
    assert data.classes == ("china", "flower")
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    stacked = torch.from_numpy(np.stack(expected)).permute(0, 3, 1, 2)  # PNG is lossless
    assert torch.equal(data.values, stacked)


def test_greyscale_jpegs_without_labels_keep_one_channel(tmp_path, photos):
    folder = tmp_path / "grey"
    folder.mkdir()
    pieces = [np.asarray(Image.fromarray(p).convert("L")) for p in crops(photos["flower"], 4)]
    for k, piece in enumerate(pieces):
        Image.fromarray(piece).save(folder / f"img{k}.jpg", quality=95)
    (folder / "notes.txt").write_text("not an image: skipped")
    data = read_data_file(folder)
    assert data.shape == (1, CROP, CROP) and data.labels is None and len(data) == 4
    error = (data.values[:, 0].float() - torch.from_numpy(np.stack(pieces)).float()).abs()
    assert error.mean() < 3  # JPEG at quality 95: off by a few levels at most on average


def test_directory_hash_covers_names_and_bytes(tmp_path, photos):
    folder = tmp_path / "d"
    folder.mkdir()
    for k, piece in enumerate(crops(photos["china"], 2)):
        save(piece, folder / f"{k}.png")
    first = read_data_file(folder).sha256
    assert read_data_file(folder).sha256 == first
    (folder / "1.png").rename(folder / "2.png")
    assert read_data_file(folder).sha256 != first


# -------------------------------------------------------------------------------- tables
def test_iris_csv_with_header_and_named_label_column(tmp_path):
    bunch = load_iris()
    rows = [[*x, bunch.target_names[t]] for x, t in zip(bunch.data, bunch.target, strict=True)]
    path = write_table(tmp_path / "iris.csv", rows, header=[*bunch.feature_names, "species"])
    data = read_data_file(path, label_column="species")
    assert data.kind == "continuous" and data.values.dtype == torch.float32
    assert data.shape == (4,) and data.columns == tuple(bunch.feature_names)
    assert data.classes == tuple(bunch.target_names)
    assert torch.equal(data.labels, torch.from_numpy(bunch.target).long())
    assert torch.equal(data.values, torch.from_numpy(bunch.data).float())
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_wine_csv_without_header_label_by_index(tmp_path):
    bunch = load_wine()
    path = write_table(tmp_path / "wine.csv", np.c_[bunch.data, bunch.target].tolist())
    data = read_data_file(path, label_column=-1)
    assert data.columns is None and data.classes is None and data.shape == (13,)
    assert data.labels.tolist() == bunch.target.tolist()
    assert torch.allclose(data.values, torch.from_numpy(bunch.data).float())


def test_diabetes_tsv_without_labels(tmp_path):
    bunch = load_diabetes()
    path = tmp_path / "diabetes.tsv"
    np.savetxt(path, bunch.data, delimiter="\t", header="\t".join(bunch.feature_names), comments="")
    data = read_data_file(path)
    assert data.columns == tuple(bunch.feature_names) and data.labels is None
    assert data.kind == "continuous" and len(data) == len(bunch.data)
    assert torch.allclose(data.values, torch.from_numpy(bunch.data).float())


def test_a_count_matrix_as_csv_and_npy_is_counts(tmp_path):
    counts = counts_matrix()
    np.savetxt(tmp_path / "counts.csv", counts, fmt="%d", delimiter=",")
    np.save(tmp_path / "counts.npy", counts)
    for name in ("counts.csv", "counts.npy"):
        data = read_data_file(tmp_path / name)
        assert data.kind == "counts" and data.levels is None
        assert data.values.dtype == torch.int64
        assert torch.equal(data.values, torch.from_numpy(counts))


# ----------------------------------------------------------------------- npy, npz, IDX
def test_digits_images_npy_are_17_levels(tmp_path):
    digits = load_digits()
    np.save(tmp_path / "digits.npy", digits.images)  # float64 [1797, 8, 8], values 0..16
    data = read_data_file(tmp_path / "digits.npy")
    assert (data.kind, data.levels, data.shape, data.format) == ("levels", 17, (8, 8), "npy")
    assert torch.equal(data.values, torch.from_numpy(digits.images.astype(np.uint8)))
    assert data.sha256 == hashlib.sha256((tmp_path / "digits.npy").read_bytes()).hexdigest()


def test_digits_npz_with_labels_and_a_lone_unnamed_array(tmp_path):
    digits = load_digits()
    np.savez_compressed(tmp_path / "d.npz", images=digits.images.astype(np.uint8), y=digits.target)
    data = read_data_file(tmp_path / "d.npz")
    assert data.labels.tolist() == digits.target.tolist() and data.kind == "levels"
    np.savez(tmp_path / "flat.npz", digits.data)  # saved as arr_0: the only array
    flat = read_data_file(tmp_path / "flat.npz")
    assert flat.shape == (64,) and flat.kind == "counts" and flat.labels is None


def test_binary_fortran_and_big_endian_arrays(tmp_path):
    binary = (load_digits().images > 8).astype(np.float32)
    np.save(tmp_path / "b.npy", np.asfortranarray(binary))
    data = read_data_file(tmp_path / "b.npy")
    assert (data.kind, data.levels, data.values.dtype) == ("binary", 2, torch.uint8)
    assert torch.equal(data.values, torch.from_numpy(binary.astype(np.uint8)))
    x = load_diabetes().data.astype(">f8")
    np.save(tmp_path / "be.npy", x)
    assert torch.equal(
        read_data_file(tmp_path / "be.npy").values, torch.from_numpy(x.astype(np.float32))
    )


def test_one_dimensional_array_is_one_value_per_example(tmp_path):
    np.save(tmp_path / "v.npy", load_diabetes().target)
    data = read_data_file(tmp_path / "v.npy")
    assert data.shape == (1,) and data.kind == "counts"  # integer targets 25..346


def test_idx_files_as_today(tmp_path):
    tensors = make_idx_files(tmp_path)
    data = read_data_file(tmp_path / "train-images-idx3-ubyte.gz")
    assert data.format == "idx" and data.shape == (28, 28) and data.kind == "levels"
    assert torch.equal(data.values, tensors["train-images-idx3-ubyte"])


# ------------------------------------------------------------------------ kinds overridden
def test_kind_override_converts_when_it_fits(tmp_path):
    np.save(tmp_path / "d.npy", load_digits().images)
    assert read_data_file(tmp_path / "d.npy", kind="continuous").values.dtype == torch.float32
    counts = read_data_file(tmp_path / "d.npy", kind="counts")
    assert counts.values.dtype == torch.int64 and counts.levels is None
    back = with_kind(counts, "levels")
    assert back.levels == 17 and back.values.dtype == torch.uint8


@pytest.mark.parametrize(
    ("values", "kind", "holds"),
    [
        (np.array([[0.0, 0.5], [1.0, 1.0]]), "binary", "values from 0 to 1, not all integers"),
        (np.array([[-2, 3], [1, 4]]), "counts", "values from -2 to 4, integers"),
        (np.array([[0, 300], [1, 4]]), "levels", "values from 0 to 300"),
    ],
)
def test_a_kind_that_does_not_fit_is_refused_saying_what_the_data_hold(
    tmp_path, values, kind, holds
):
    path = tmp_path / "x.npy"
    np.save(path, values)
    with pytest.raises(DataFormatError, match=holds) as caught:
        read_data_file(path, kind=kind)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_iris_measurements_as_counts_are_refused(tmp_path):
    path = tmp_path / "iris.csv"
    np.savetxt(path, load_iris().data, delimiter=",")
    with pytest.raises(DataFormatError, match="look continuous"):
        read_data_file(path, kind="counts")
    with pytest.raises(ConfigError, match="not one of"):
        read_data_file(path, kind="ordinal")


# ---------------------------------------------------------------------------------- split
def digits_data(tmp_path) -> ArrayData:
    np.savez(tmp_path / "d.npz", x=load_digits().images, y=load_digits().target)
    return read_data_file(tmp_path / "d.npz")


def test_split_is_seeded_disjoint_and_documented(tmp_path):
    data = digits_data(tmp_path)
    splits = split(data, seed=3)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1258, 180, 359)
    perm = np.random.RandomState(3).permutation(len(data))
    assert splits.index["test"].tolist() == perm[:359].tolist()
    together = np.concatenate([splits.index[s] for s in ("train", "val", "test")])
    assert sorted(together.tolist()) == list(range(len(data)))
    assert torch.equal(splits.val.values, data.values[perm[359:539]])
    assert torch.equal(splits.val.labels, data.labels[perm[359:539]])
    again, other = split(data, seed=3), split(data, seed=4)
    assert np.array_equal(again.index["train"], splits.index["train"])
    assert not np.array_equal(other.index["train"], splits.index["train"])
    assert splits.train.sha256 == data.sha256 and splits.train.kind == "levels"


def test_split_with_the_users_own_test_file(tmp_path):
    data = digits_data(tmp_path)
    np.save(tmp_path / "test.npy", load_digits().images[:50] // 2)  # max 8: still 17 levels
    test = read_data_file(tmp_path / "test.npy")
    splits = split(data, seed=0, test=test)
    assert len(splits.test) == 50 and splits.index["test"] is None
    assert splits.test.levels == 17 and len(splits.train) + len(splits.val) == len(data)
    np.save(tmp_path / "wrong.npy", np.zeros((5, 8, 9)))
    with pytest.raises(DataFormatError, match=r"shape \[8, 9\].*\[8, 8\]") as caught:
        split(data, seed=0, test=read_data_file(tmp_path / "wrong.npy"))
    assert "wrong.npy" in str(caught.value)
    np.save(tmp_path / "neg.npy", -load_digits().images[:5])
    with pytest.raises(DataFormatError, match="neg.npy.*needs integers from 0 to 16"):
        split(data, seed=0, test=read_data_file(tmp_path / "neg.npy"))


def test_split_matches_class_names_of_the_test_file(tmp_path):
    bunch = load_iris()
    names = bunch.target_names
    rows = [[*x, names[t]] for x, t in zip(bunch.data, bunch.target, strict=True)]
    train = read_data_file(write_table(tmp_path / "a.csv", rows), label_column=-1)
    test = read_data_file(write_table(tmp_path / "b.csv", rows[100:]), label_column=-1)
    assert test.classes == ("virginica",)
    assert split(train, seed=0, test=test).test.labels.tolist() == [2] * 50


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": -1}, "seed"),
        ({"seed": 0, "val_fraction": 0.5, "test_fraction": 0.5}, "below 1"),
        ({"seed": 0, "test_fraction": 1.5}, "test_fraction"),
    ],
)
def test_split_options_are_checked(tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        split(digits_data(tmp_path), **kwargs)
