from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from helpers import make_idx_files

from pyro_vae import DataFormatError, DatasetUnavailableError, load_dataset, write_idx
from pyro_vae.data import datasets as ds_module

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def _rows(images: torch.Tensor) -> list[bytes]:
    return sorted(bytes(row) for row in images.reshape(len(images), -1).numpy())


def test_digits_shapes_types_and_fixed_splits(digits):
    assert (len(digits.train), len(digits.val), len(digits.test)) == (1197, 300, 300)
    assert digits.image_shape == (8, 8) and digits.data_dim == 64 and digits.levels == 17
    for split in (digits.train, digits.val, digits.test):
        assert split.images.dtype == torch.uint8 and split.labels.dtype == torch.int64
        assert split.images.min() >= 0 and split.images.max() <= 16
        assert set(split.labels.unique().tolist()) <= set(range(10))
    again = load_dataset("digits")
    assert torch.equal(again.test.images, digits.test.images)
    assert torch.equal(again.train.labels, digits.train.labels)


def test_digits_splits_partition_the_data_set(digits):
    from sklearn.datasets import load_digits

    everything = torch.from_numpy(load_digits().images.astype(np.uint8))
    parts = torch.cat([digits.train.images, digits.val.images, digits.test.images])
    assert _rows(parts) == _rows(everything)


@pytest.mark.parametrize("layout", ["flat-gz", "flat-plain", "torchvision-raw"])
def test_mnist_from_local_idx_files(tmp_path, layout):
    if layout == "torchvision-raw":
        directory = tmp_path / "MNIST" / "raw"
    else:
        directory = tmp_path
    tensors = make_idx_files(directory, n_train=120, n_test=30, gz=layout != "flat-plain")
    data = load_dataset("mnist", data_dir=tmp_path, download=False)
    assert (len(data.train), len(data.val), len(data.test)) == (100, 20, 30)
    assert data.image_shape == (28, 28) and data.levels == 256
    assert data.train.images.dtype == torch.uint8
    assert torch.equal(data.test.images, tensors["t10k-images-idx3-ubyte"])
    assert torch.equal(data.test.labels, tensors["t10k-labels-idx1-ubyte"].long())
    # validation is carved out of the training file: together they are all of it
    train_and_val = torch.cat([data.train.images, data.val.images])
    assert _rows(train_and_val) == _rows(tensors["train-images-idx3-ubyte"])


def test_missing_mnist_says_how_to_supply_it(tmp_path):
    with pytest.raises(DatasetUnavailableError) as info:
        load_dataset("mnist", data_dir=tmp_path, download=False)
    message = str(info.value)
    for needle in (
        "train-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        "--data-dir",
        str(tmp_path),
        "MNIST/raw",
    ):
        assert needle in message


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    def offline(source, root):
        raise URLError("network unreachable")

    monkeypatch.setattr(ds_module, "_download", offline)
    with pytest.raises(DatasetUnavailableError, match="download failed.*network unreachable"):
        load_dataset("mnist", data_dir=tmp_path, download=True)


def test_download_goes_through_torchvision_layout(tmp_path, monkeypatch):
    calls = []

    def fake_download(source, root):  # what torchvision leaves behind: ROOT/MNIST/raw/<files>
        calls.append((source.torchvision_name, root))
        make_idx_files(Path(root) / source.torchvision_name / "raw", gz=False)

    monkeypatch.setattr(ds_module, "_download", fake_download)
    data = load_dataset("mnist", data_dir=tmp_path, download=True)
    assert calls == [("MNIST", tmp_path)]
    assert len(data.test) == 30
    # second time: found locally, no download
    load_dataset("mnist", data_dir=tmp_path, download=True)
    assert len(calls) == 1


def test_partial_files_list_what_is_missing(tmp_path):
    make_idx_files(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetUnavailableError, match="lacks t10k-labels-idx1-ubyte"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_mismatched_files_are_refused(tmp_path):
    make_idx_files(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", torch.zeros(7, dtype=torch.uint8))
    with pytest.raises(DataFormatError, match="120 images but .* 7 labels"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_truncated_file_in_data_dir_is_refused(tmp_path):
    make_idx_files(tmp_path, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataFormatError, match="truncated"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_unknown_data_set_lists_the_choices():
    with pytest.raises(DatasetUnavailableError, match="digits, fashion-mnist, mnist"):
        load_dataset("cifar")


def test_fashion_mnist_error_mentions_debian_package(tmp_path, monkeypatch):
    monkeypatch.setitem(ds_module.SYSTEM_DIRS, "fashion-mnist", ())
    with pytest.raises(DatasetUnavailableError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", data_dir=tmp_path, download=False)


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist absent")
def test_real_fashion_mnist_from_debian_package():
    data = load_dataset("fashion-mnist", download=False)
    assert (len(data.train), len(data.val), len(data.test)) == (50000, 10000, 10000)
    assert data.image_shape == (28, 28) and data.levels == 256
    assert data.train.images.dtype == torch.uint8
    assert int(data.train.images.max()) == 255 and int(data.train.images.min()) == 0
    assert sorted(data.test.labels.unique().tolist()) == list(range(10))
    assert torch.bincount(data.test.labels).tolist() == [1000] * 10  # the official test set
    assert data.source == str(DEBIAN_FASHION)
