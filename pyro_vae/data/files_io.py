"""Opening a user's data file as untrusted input: regular files only (never a FIFO, device or
directory, and inside a data directory never a symbolic link), sizes checked before reading,
bytes hashed as they are read. The readers of :mod:`pyro_vae.data.files` build on this."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import DataFormatError, DatasetUnavailableError

MAX_BYTES = 1 << 33
"""The largest data file (or image directory, all files together) read by default: 8 GiB."""
MAX_TABLE_BYTES = 1 << 30
"""The largest CSV/TSV table read by default (1 GiB): tables are parsed in Python, slowly."""
MAX_VALUES = 1 << 30
"""The most numbers (examples x values per example) a data file may hold by default."""
CHUNK = 1 << 22
HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class Raw:
    """What a reader found, before the kind of data is settled: ``values`` ``[N, ...]`` as
    stored (any numeric dtype), integer ``labels`` ``[N]`` (codes into ``classes`` when the
    labels are names), the table's ``columns``, and ``levels`` where the format fixes them
    (8-bit images: 256)."""

    values: np.ndarray
    sha256: str
    format: str
    labels: np.ndarray | None = None
    classes: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None
    levels: int | None = None


def open_regular(path: Path, *, follow_links: bool = True) -> BinaryIO:
    """``path`` opened for reading, refused unless it is a regular file (checked on the open
    file, so it cannot be swapped after the check; a FIFO does not block the open). With
    ``follow_links=False`` a symbolic link is refused too."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        if not follow_links and path.is_symlink():
            raise OSError(errno.ELOOP, "symbolic link")
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise DatasetUnavailableError(f"{path}: no such file or directory.") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataFormatError(
                f"{path}: a symbolic link; pyro-vae reads only regular files inside a data "
                "directory (copy the file there instead)."
            ) from None
        raise DatasetUnavailableError(f"{path}: cannot be opened ({exc.strerror}).") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise DataFormatError(f"{path}: {what}; expected a data file.")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_size(path: Path, f: BinaryIO, max_bytes: int) -> int:
    """The size of the open file ``f``, refused when empty or over ``max_bytes`` (before a
    single byte is read)."""
    size = os.fstat(f.fileno()).st_size
    if size == 0:
        raise DataFormatError(f"{path}: the file is empty.")
    if size > max_bytes:
        raise DataFormatError(
            f"{path}: {size:,} bytes, more than the {max_bytes:,} bytes pyro-vae reads from a "
            "data file; refused before reading it."
        )
    return size


def hash_stream(f: BinaryIO, size: int) -> str:
    """The SHA-256 of the ``size``-byte file ``f`` (read a MiB at a time into one buffer), then
    ``f`` rewound to the start."""
    digest = hashlib.sha256()
    buffer = bytearray(min(HASH_CHUNK, size + 1))
    view = memoryview(buffer)
    while n := f.readinto(buffer):
        digest.update(view[:n])
    f.seek(0)
    return digest.hexdigest()


def read_into(f: BinaryIO, out: np.ndarray) -> int:
    """Fill the contiguous array ``out`` from ``f`` a chunk at a time; the number of bytes read
    (less than ``out.nbytes`` when ``f`` runs short)."""
    view = out.reshape(-1).view(np.uint8)
    filled = 0
    while filled < len(view):
        n = f.readinto(memoryview(view[filled : filled + CHUNK]))
        if not n:
            break
        filled += n
    return filled


def check_bound(path: Path, shape: tuple[int, ...], max_values: int) -> None:
    """Refuse an array of ``shape`` with more than ``max_values`` numbers, or with no examples
    or empty examples."""
    if len(shape) == 0:
        raise DataFormatError(f"{path}: holds a single number, not an array of examples.")
    if any(s < 0 for s in shape):
        raise DataFormatError(f"{path}: its header declares a negative size {shape}.")
    if shape[0] == 0:
        raise DataFormatError(f"{path}: holds no examples (shape {shape}).")
    if any(s == 0 for s in shape[1:]):
        raise DataFormatError(f"{path}: its examples are empty (shape {shape}).")
    count = 1
    for s in shape:
        count *= s
    if count > max_values:
        raise DataFormatError(
            f"{path}: shape {shape} holds {count:,} values, more than the {max_values:,} "
            "allowed; refused before reading them."
        )
