import gzip
import os
import struct
import tracemalloc

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
    header = struct.pack(">HBB", 0, 0x08, 1) + struct.pack(">i", 1000)
    data = gzip.compress(header + bytes(1000))
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


def _bomb(path, header_shape, zeros: int) -> None:
    """A gzip file whose IDX header announces ``header_shape`` (uint8) followed by ``zeros``
    zero bytes: a few hundred kilobytes on disk that inflate to ``zeros`` bytes."""
    ndim = len(header_shape)
    header = struct.pack(">HBB", 0, 0x08, ndim) + struct.pack(f">{ndim}i", *header_shape)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header)
        block = bytes(1 << 20)
        for _ in range(zeros >> 20):
            f.write(block)


def _peak_bytes_of_refusal(path, match: str) -> int:
    """Peak memory Python allocated while ``read_idx(path)`` refused the file with ``match``."""
    tracemalloc.start()
    try:
        with pytest.raises(DataFormatError, match=match):
            read_idx(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_gzip_bomb_is_refused_before_it_inflates(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    _bomb(path, (10, 28, 28), 200 << 20)  # 200 MB of zeros behind a 7,840-byte header
    assert path.stat().st_size < 1 << 20
    peak = _peak_bytes_of_refusal(path, "longer than its header says")
    assert peak < 20 << 20  # the header's 7,840 bytes plus a chunk, not 200 MB


def test_a_header_announcing_a_huge_array_is_refused_or_read_as_far_as_data_exists(tmp_path):
    huge = tmp_path / "huge.gz"
    _bomb(huge, (1 << 20, 1 << 10, 1 << 10), 0)  # announces 2^40 bytes
    with pytest.raises(DataFormatError, match="more than the"):
        read_idx(huge)
    short = tmp_path / "short.gz"
    _bomb(short, (1 << 12, 1 << 10, 1 << 10), 1 << 20)  # announces 4 GB, holds 1 MB
    peak = _peak_bytes_of_refusal(short, "truncated")
    assert peak < 20 << 20  # memory follows the data that is there, not the header's claim


def test_write_idx_is_atomic_and_never_follows_a_link(tmp_path):
    target = tmp_path / "precious"
    target.write_bytes(b"keep")
    link = tmp_path / "a.idx.gz"
    link.symlink_to(target)
    tensor = torch.arange(12, dtype=torch.uint8).reshape(3, 4)
    write_idx(link, tensor)
    assert target.read_bytes() == b"keep" and not link.is_symlink()
    assert torch.equal(read_idx(link), tensor)

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fsync", fail)
        with pytest.raises(OSError):
            write_idx(link, torch.zeros(5, dtype=torch.uint8))
    assert torch.equal(read_idx(link), tensor)  # the old file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.idx.gz", "precious"]
