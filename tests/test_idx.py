import gzip

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyro_vae import DataFormatError, read_idx, write_idx

DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.float32, torch.float64]


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=4),
    dtype=st.sampled_from(DTYPES),
    gz=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_round_trip_any_shape_and_type(tmp_path_factory, shape, dtype, gz, seed):
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        tensor = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    else:
        info = torch.iinfo(dtype)
        tensor = torch.randint(info.min, info.max, shape, generator=g, dtype=torch.int64).to(dtype)
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, tensor)
    back = read_idx(path)
    assert back.dtype == dtype and back.shape == tensor.shape
    assert torch.equal(back, tensor)


def test_gzip_is_detected_by_content_not_name(tmp_path):
    tensor = torch.arange(24, dtype=torch.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "images", tensor, compress=True)  # gzip without a .gz suffix
    assert torch.equal(read_idx(tmp_path / "images"), tensor)


def test_truncated_file_is_named_with_sizes(tmp_path):
    tensor = torch.zeros(10, 28, 28, dtype=torch.uint8)
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, tensor)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataFormatError, match=r"truncated.*\(10, 28, 28\).*7840 bytes.*7740"):
        read_idx(path)


def test_trailing_garbage_is_refused(tmp_path):
    path = tmp_path / "x"
    write_idx(path, torch.zeros(3, dtype=torch.uint8))
    path.write_bytes(path.read_bytes() + b"junk")
    with pytest.raises(DataFormatError, match="longer than its header"):
        read_idx(path)


def test_wrong_magic_is_refused(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(DataFormatError, match="not an IDX file"):
        read_idx(path)


def test_corrupt_gzip_is_refused(tmp_path):
    path = tmp_path / "x.gz"
    data = gzip.compress(bytes(1000))
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="gzip stream is corrupt or truncated"):
        read_idx(path)


def test_too_short_and_header_truncation(tmp_path):
    (tmp_path / "a").write_bytes(b"\x00\x00")
    with pytest.raises(DataFormatError, match="too short"):
        read_idx(tmp_path / "a")
    (tmp_path / "b").write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(DataFormatError, match="header"):
        read_idx(tmp_path / "b")
