"""A user's data files as untrusted input (issue 27): every hostile file is refused with a
one-line message naming it, with bounded memory (measured with tracemalloc, which sees NumPy's
allocations) and without reading more than the bound."""

from __future__ import annotations

import gzip
import io
import os
import struct
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits, load_sample_images

from pyro_vae.data.files import read_data_file
from pyro_vae.errors import ConfigError, DataFormatError, DatasetUnavailableError

MB = 1 << 20


def refused(call: Callable[[], object], named: Path, error=DataFormatError, match: str = "."):
    """Run ``call``, which must raise ``error`` with a one-line message naming ``named`` (and
    matching ``match``); the peak of traced memory while it ran, in bytes."""
    tracemalloc.start()
    try:
        with pytest.raises(error, match=match) as caught:
            call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert str(named) in message and "\n" not in message, message
    return peak


def npy_header(path: Path, shape, descr: str = "<f8", body: bytes = b"") -> Path:
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"shape": shape, "fortran_order": False, "descr": descr}
        )
        f.write(body)
    return path


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A tiny PNG (one row of data) whose header declares ``width`` x ``height`` greyscale."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (width + 1))
    signature = b"\x89PNG\r\n\x1a\n"
    path.write_bytes(signature + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_sample_images().images[0][:32, :32]


# ----------------------------------------------------------------------- arrays (.npy, .npz)
def test_truncated_npy(tmp_path):
    path = tmp_path / "digits.npy"
    np.save(path, load_digits().images)
    path.write_bytes(path.read_bytes()[:-100])
    refused(lambda: read_data_file(path), path, match="truncated")


@pytest.mark.parametrize(
    ("shape", "match"),
    [((10**7, 10**4), "more than the"), ((1000, 1000), "truncated"), ((-5, 3), "negative")],
)
def test_a_lying_npy_header_is_refused_before_allocating(tmp_path, shape, match):
    path = npy_header(tmp_path / "lies.npy", shape, body=b"\0" * 80)
    peak = refused(lambda: read_data_file(path), path, match=match)
    assert peak < MB  # the announced array (8 MB or 800 GB) is never allocated


def test_an_object_array_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    values = np.empty((2, 2), dtype=object)
    values[:] = Payload()
    np.save(tmp_path / "objects.npy", values, allow_pickle=True)
    np.savez(tmp_path / "objects.npz", x=np.zeros((2, 2)), y=values[:, 0])
    for name in ("objects.npy", "objects.npz"):
        refused(lambda n=name: read_data_file(tmp_path / n), tmp_path / name, match="objects")
    assert not marker.exists()


def test_truncated_npz_archive(tmp_path):
    path = tmp_path / "d.npz"
    np.savez_compressed(path, x=load_digits().images)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    refused(lambda: read_data_file(path), path, match="not a readable .npz")


def test_npz_member_inflating_far_past_its_header(tmp_path):
    """A zip bomb: a 100 MB member (deflated to ~100 kB) whose .npy header announces 10
    numbers; refused from the sizes alone, nothing inflated."""
    path = tmp_path / "bomb.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"shape": (1, 10), "fortran_order": False, "descr": "|u1"}
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            for _ in range(100):
                member.write(bytes(MB))
    assert path.stat().st_size < MB
    peak = refused(lambda: read_data_file(path), path, match="longer than its header")
    assert peak < 2 * MB


def test_npz_member_with_a_huge_header_and_ambiguous_names(tmp_path):
    big = tmp_path / "big.npz"
    with zipfile.ZipFile(big, "w") as archive:
        archive.writestr("x.npy", npy_header(tmp_path / "h.npy", (10**6, 10**6)).read_bytes())
    assert refused(lambda: read_data_file(big), big, match="more than the") < MB
    both = tmp_path / "both.npz"
    np.savez(both, x=np.zeros((3, 2)), data=np.ones((3, 2)))
    refused(lambda: read_data_file(both), both, match="several candidate arrays")
    unnamed = tmp_path / "unnamed.npz"
    np.savez(unnamed, a=np.zeros((3, 2)), b=np.ones((3, 2)))
    refused(lambda: read_data_file(unnamed), unnamed, match="which array")


def test_nan_and_inf_in_arrays_name_where(tmp_path):
    values = np.zeros((4, 3))
    values[1, 2] = np.inf
    np.save(tmp_path / "inf.npy", values)
    refused(
        lambda: read_data_file(tmp_path / "inf.npy"),
        tmp_path / "inf.npy",
        match=r"an infinite value at example 1, position \(2,\)",
    )
    values[1, 2], values[3, 0] = 1.0, np.nan
    np.savez(tmp_path / "nan.npz", x=values)
    refused(lambda: read_data_file(tmp_path / "nan.npz"), tmp_path / "nan.npz", match="NaN")


# ----------------------------------------------------------------------------- images
def test_a_link_to_a_file_elsewhere_is_refused(tmp_path, photo):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "a.png")
    Image.fromarray(photo).save(tmp_path / "secret.png")
    (folder / "b.png").symlink_to(tmp_path / "secret.png")
    refused(lambda: read_data_file(folder), folder / "b.png", match="symbolic link")
    (folder / "b.png").unlink()
    (tmp_path / "elsewhere").mkdir()
    (folder / "cats").symlink_to(tmp_path / "elsewhere")
    refused(lambda: read_data_file(folder), folder / "cats", match="symbolic link")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    os.mkfifo(folder / "a.png")
    refused(lambda: read_data_file(folder), folder / "a.png", match="not a regular file")
    os.mkfifo(tmp_path / "data.npy")
    refused(lambda: read_data_file(tmp_path / "data.npy"), tmp_path / "data.npy")


def test_mixed_image_sizes_and_modes_name_the_offending_file(tmp_path, photo):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "a.png")
    Image.fromarray(photo[:16]).save(folder / "b.png")
    refused(lambda: read_data_file(folder), folder / "b.png", match="32x16 RGB.*32x32 RGB")
    Image.fromarray(photo).convert("L").save(folder / "b.png")
    refused(lambda: read_data_file(folder), folder / "b.png", match="one colour mode")


@pytest.mark.parametrize(
    "side", [100_000, 9_500, 9_000]
)  # Pillow's error, Pillow's warning, our bound
def test_a_decompression_bomb_png_is_refused_before_decoding(tmp_path, photo, side):
    folder = tmp_path / "bomb"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "a.png")
    bomb = png_declaring(folder / "b.png", side, side)
    assert bomb.stat().st_size < 100_000
    peak = refused(lambda: read_data_file(folder), bomb)
    assert peak < 2 * MB


def test_truncated_and_fake_images(tmp_path, photo):
    folder = tmp_path / "broken"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "a.png")
    whole = (folder / "a.png").read_bytes()
    (folder / "b.png").write_bytes(whole[: len(whole) // 2])
    refused(lambda: read_data_file(folder), folder / "b.png", match="corrupt or truncated")
    (folder / "b.png").write_bytes(b"#!/bin/sh\necho not an image\n")
    refused(lambda: read_data_file(folder), folder / "b.png", match="not a readable")
    (folder / "b.png").unlink()
    Image.fromarray(photo[..., 0].astype(np.uint16) * 200).save(folder / "a.png")  # 16-bit
    refused(lambda: read_data_file(folder), folder / "a.png", match="8-bit")


def test_directory_layouts_that_are_refused(tmp_path, photo):
    (tmp_path / "deep" / "cat" / "more").mkdir(parents=True)
    refused(lambda: read_data_file(tmp_path / "deep"), tmp_path / "deep" / "cat" / "more")
    (tmp_path / "both" / "cat").mkdir(parents=True)
    Image.fromarray(photo).save(tmp_path / "both" / "a.png")
    refused(lambda: read_data_file(tmp_path / "both"), tmp_path / "both", match="both images")


# ----------------------------------------------------------------------------- tables
def test_a_billion_row_csv_is_refused_by_its_size_unread(tmp_path):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as f:
        f.truncate(2 * 10**9)  # sparse: room for 10^9 rows of "0\n"
    start = time.perf_counter()
    peak = refused(lambda: read_data_file(path), path, match="bytes, more than")
    assert time.perf_counter() - start < 1 and peak < MB


def test_a_long_csv_is_refused_by_the_value_bound_while_streaming(tmp_path):
    path = tmp_path / "long.csv"
    row = "1,2,3,4,5\n"
    path.write_text(row * 200_000)
    peak = refused(
        lambda: read_data_file(path, max_values=10_000), path, match="more than 10,000 values"
    )
    assert peak < 2 * MB  # the 2 MB file is never held whole
    path.write_text("1," * (1 << 20) + "1\n")
    refused(lambda: read_data_file(path), path, match="longer than")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a,b\n1,2\n3,nan\n", r"line 3, column 2 \('b'\): 'nan' is not a finite number"),
        ("1,2\n3,-inf\n", r"line 2, column 2: '-inf'"),
        ("1,2\n3,\n", "an empty cell"),
        ("1,2\n3,four\n", "'four'"),
        ("1,2\n3,4,5\n", "line 2 has 3 cells, expected 2"),
        ("", "empty"),
        ("a,b\n", "no rows of numbers"),
    ],
)
def test_bad_cells_name_line_and_column(tmp_path, text, match):
    path = tmp_path / "t.csv"
    path.write_text(text)
    refused(lambda: read_data_file(path), path, match=match)


def test_non_utf8_table_and_missing_label_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"x,y\n1,2\n\xff\xfe,3\n")
    refused(lambda: read_data_file(path), path, match="not UTF-8")
    path.write_text("x,y\n1,2\n")
    refused(lambda: read_data_file(path, label_column="z"), path, ConfigError, "no column")
    refused(lambda: read_data_file(path, label_column=5), path, ConfigError, "out of range")


# --------------------------------------------------------------------------- IDX, empties
def test_a_gzip_bomb_posing_as_idx_is_refused_with_bounded_memory(tmp_path):
    path = tmp_path / "bomb-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">HBB3i", 0, 8, 3, 10, 4, 4))
        for _ in range(100):
            f.write(bytes(MB))  # 100 MB of zeros past a 160-byte array
    assert path.stat().st_size < MB
    peak = refused(lambda: read_data_file(path), path, match="longer than its header says")
    assert peak < 12 * MB


def test_an_idx_header_beyond_the_value_bound(tmp_path):
    path = tmp_path / "big.idx"
    path.write_bytes(struct.pack(">HBB3i", 0, 8, 3, 60_000, 28, 28))
    refused(lambda: read_data_file(path, max_values=10**6), path, match="more than the 1,000,000")


def test_empty_files_and_directories(tmp_path):
    for name in ("e.npy", "e.npz", "e.csv", "e-ubyte"):
        (tmp_path / name).write_bytes(b"")
        refused(lambda n=name: read_data_file(tmp_path / n), tmp_path / name, match="empty")
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / ".hidden.png").write_bytes(b"")
    refused(lambda: read_data_file(tmp_path / "none"), tmp_path / "none", match="no PNG")


def test_missing_file_unknown_suffix_and_misplaced_options(tmp_path):
    missing = tmp_path / "missing.npy"
    refused(lambda: read_data_file(missing), missing, DatasetUnavailableError)
    odd = tmp_path / "data.parquet"
    odd.write_bytes(b"PAR1")
    refused(lambda: read_data_file(odd), odd, ConfigError, "unknown kind of data file")
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    refused(
        lambda: read_data_file(tmp_path / "x.npy", label_column=0), tmp_path / "x.npy", ConfigError
    )
