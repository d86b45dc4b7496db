"""NumPy ``.npy`` and ``.npz`` files as untrusted input.

Only the header is parsed before anything is allocated (``numpy.lib.format``'s header reader,
which evaluates literals and never unpickles): the dtype must be numeric (an object array is
refused, never loaded), the shape within the bound, and the bytes on disk (or the size the
archive declares for a ``.npz`` member) exactly what the header promises, so a lying or
truncated file is refused before its data are read. An ``.npz`` member is inflated no further
than its declared size, and its CRC is checked.
"""

from __future__ import annotations

import math
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import DataFormatError, first_line
from .files_io import CHUNK, Raw, check_bound, file_size, hash_stream, read_into

VALUE_NAMES = ("x", "images", "data")
"""The names an ``.npz`` archive's data array may have (or it holds only one array)."""
LABEL_NAMES = ("y", "labels")
"""The names of an ``.npz`` archive's optional label array."""
_MAX_MEMBERS = 1024
_HEADER_ERRORS = (ValueError, SyntaxError, TypeError, KeyError, RecursionError, MemoryError)


def _header(where: str, f: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The shape, Fortran order and dtype a ``.npy`` header declares; ``f`` is left at the
    first byte of data."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        with warnings.catch_warnings():  # a Python 2 header: parsed all the same
            warnings.simplefilter("ignore", UserWarning)
            if version == (1, 0):
                return fmt.read_array_header_1_0(f)
            if version == (2, 0):
                return fmt.read_array_header_2_0(f)
    except _HEADER_ERRORS as exc:
        raise DataFormatError(f"{where}: not a valid .npy array ({first_line(exc)}).") from None
    raise DataFormatError(
        f"{where}: .npy format version {version[0]}.{version[1]} is not read by pyro-vae "
        "(save the array again with numpy.save: it writes version 1.0 for numeric arrays)."
    )


def _check_dtype(where: str, dtype: np.dtype, labels: bool = False) -> None:
    if dtype.hasobject:
        raise DataFormatError(
            f"{where}: holds Python objects (dtype object); pyro-vae never unpickles data. "
            "Save a numeric array instead, e.g. numpy.save(path, x.astype(numpy.float32))."
        )
    allowed = "biufU" if labels else "biuf"
    if dtype.names is not None or dtype.subdtype is not None or dtype.kind not in allowed:
        what = "labels" if labels else "values"
        raise DataFormatError(
            f"{where}: dtype {dtype} is not numeric; pyro-vae reads integer, boolean or "
            f"floating-point {what}{' (or strings)' if labels else ''}."
        )


def _read_body(
    where: str, f: BinaryIO, shape: tuple[int, ...], fortran: bool, dtype: np.dtype, left: int
) -> np.ndarray:
    """The array body, once ``left`` (the bytes after the header) matches the header exactly."""
    expected = math.prod(shape) * dtype.itemsize
    if left != expected:
        what = "truncated" if left < expected else "longer than its header says"
        raise DataFormatError(
            f"{where}: {what}: the header promises shape {shape} of {dtype} ({expected:,} "
            f"bytes of data) but {left:,} bytes follow it."
        )
    out = np.empty(math.prod(shape), dtype=dtype)
    if read_into(f, out) != expected:
        raise DataFormatError(f"{where}: truncated while reading (the file changed?).")
    out = out.reshape(shape, order="F" if fortran else "C")
    out = np.ascontiguousarray(out)
    if not out.dtype.isnative:
        out = out.astype(out.dtype.newbyteorder("="))
    return out


def read_npy(path: Path, f: BinaryIO, *, max_bytes: int, max_values: int) -> Raw:
    """A ``.npy`` file: one array ``[N, ...]``, no labels."""
    size = file_size(path, f, max_bytes)
    sha = hash_stream(f, size)
    shape, fortran, dtype = _header(str(path), f)
    _check_dtype(str(path), dtype)
    check_bound(path, tuple(shape), max_values)
    values = _read_body(str(path), f, tuple(shape), fortran, dtype, size - f.tell())
    return Raw(values=values, sha256=sha, format="npy")


def _member(
    path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_values: int, labels: bool
) -> np.ndarray:
    where = f"{path} (array {info.filename!r})"
    with archive.open(info) as member:
        shape, fortran, dtype = _header(where, member)
        _check_dtype(where, dtype, labels)
        check_bound(Path(where), tuple(shape), max_values)
        body = _read_body(
            where, member, tuple(shape), fortran, dtype, info.file_size - member.tell()
        )
        if member.read(1):  # reads to the end of the member: its CRC is checked
            raise DataFormatError(f"{where}: longer than its header says.")
    return body


def _choose(path: Path, names: dict[str, zipfile.ZipInfo]) -> tuple[str, str | None]:
    """The names of the archive's values and labels arrays."""
    values = [n for n in VALUE_NAMES if n in names]
    labels = [n for n in LABEL_NAMES if n in names]
    if len(values) > 1 or len(labels) > 1:
        raise DataFormatError(
            f"{path}: holds several candidate arrays ({', '.join(values + labels)}); keep one "
            f"of {'/'.join(VALUE_NAMES)} and at most one of {'/'.join(LABEL_NAMES)}."
        )
    if values:
        return values[0], labels[0] if labels else None
    if len(names) == 1:
        return next(iter(names)), None
    listed = ", ".join(sorted(names)[:10]) or "none"
    raise DataFormatError(
        f"{path}: which array holds the data? Name it {' or '.join(VALUE_NAMES)} (labels: "
        f"{' or '.join(LABEL_NAMES)}), or save only one array; the archive holds: {listed}."
    )


def read_npz(path: Path, f: BinaryIO, *, max_bytes: int, max_values: int) -> Raw:
    """An ``.npz`` archive: the array named ``x``/``images``/``data`` (or its only array) and
    the optional labels ``y``/``labels``."""
    size = file_size(path, f, max_bytes)
    sha = hash_stream(f, size)
    try:
        with zipfile.ZipFile(f) as archive:
            infos = archive.infolist()
            if len(infos) > _MAX_MEMBERS:
                raise DataFormatError(f"{path}: holds {len(infos):,} members, too many.")
            names = {i.filename.removesuffix(".npy"): i for i in infos if not i.is_dir()}
            values_name, labels_name = _choose(path, names)
            values = _member(path, archive, names[values_name], max_values, labels=False)
            labels = None
            if labels_name is not None:
                labels = _member(path, archive, names[labels_name], max_values, labels=True)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, zlib.error) as exc:
        raise DataFormatError(f"{path}: not a readable .npz archive ({first_line(exc)}).") from None
    except (NotImplementedError, RuntimeError) as exc:  # unknown compression, encryption
        raise DataFormatError(f"{path}: an .npz archive pyro-vae cannot read ({exc}).") from None
    codes, classes = label_codes(path, labels, len(values)) if labels is not None else (None, None)
    return Raw(values=values, sha256=sha, format="npz", labels=codes, classes=classes)


def label_codes(
    path: Path, labels: np.ndarray, n: int
) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Labels ``[n]`` as int64 codes: integers as they are, names as indices into their sorted
    list (returned as the classes)."""
    if labels.shape != (n,):
        raise DataFormatError(
            f"{path}: the labels have shape {labels.shape}, expected ({n},): one per example."
        )
    if labels.dtype.kind == "U":
        classes, codes = np.unique(labels, return_inverse=True)
        return codes.astype(np.int64), tuple(str(c) for c in classes)
    if labels.dtype.kind == "f":
        for start in range(0, n, CHUNK):
            part = labels[start : start + CHUNK]
            if not (np.isfinite(part).all() and (part == np.round(part)).all()):
                raise DataFormatError(f"{path}: the labels are not integers.")
        if n and np.abs(labels).max() > 2**53:
            raise DataFormatError(f"{path}: the labels are too large to be class numbers.")
    elif labels.dtype == np.uint64 and n and labels.max() > np.iinfo(np.int64).max:
        raise DataFormatError(f"{path}: the labels are too large to be class numbers.")
    return labels.astype(np.int64), None
