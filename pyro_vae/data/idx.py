"""Reading and writing the IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed.

An IDX file is a 4-byte magic number ``00 00 <type> <ndim>``, then ``ndim`` big-endian int32
sizes, then the array in C order (big-endian for multi-byte types). torchvision reads only the
uncompressed files it downloaded itself and fails obscurely on a truncated one; this reader takes
``.gz`` or plain files and says exactly what is wrong with a bad one.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np
import torch

from ..errors import DataFormatError

# IDX type code -> big-endian numpy dtype.
_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TORCH_TO_IDX: dict[torch.dtype, int] = {
    torch.uint8: 0x08,
    torch.int8: 0x09,
    torch.int16: 0x0B,
    torch.int32: 0x0C,
    torch.float32: 0x0D,
    torch.float64: 0x0E,
}
_GZIP_MAGIC = b"\x1f\x8b"


MAX_IDX_BYTES = 1 << 33
"""The largest array an IDX header may announce (8 GB; MNIST's training images are 47 MB)."""
_CHUNK = 1 << 22


def _read_at_most(stream: IO[bytes], limit: int) -> bytes:
    """Up to ``limit`` bytes from ``stream``, in chunks: memory follows what is really there,
    never a size a header claims, and a compressed stream is inflated no further than that."""
    out = bytearray()
    while len(out) < limit:
        piece = stream.read(min(_CHUNK, limit - len(out)))
        if not piece:
            break
        out += piece
    return bytes(out)


def _parse_idx(path: Path, stream: IO[bytes], max_values: int | None = None) -> torch.Tensor:
    """The array of an IDX stream; its header bounds every later read (a gzip bomb posing as an
    IDX file is refused once it inflates one byte past what its header announces), and a header
    announcing more than ``max_values`` values is refused before anything else is read."""
    magic = _read_at_most(stream, 4)
    if len(magic) < 4:
        raise DataFormatError(f"{path}: too short to be an IDX file ({len(magic)} bytes).")
    zero, type_code, ndim = struct.unpack(">HBB", magic)
    if zero != 0 or type_code not in _IDX_TYPES or ndim == 0:
        raise DataFormatError(
            f"{path}: not an IDX file (magic bytes {magic.hex()}; expected 0000 followed by a "
            "type code 08/09/0b/0c/0d/0e and the number of dimensions)."
        )
    sizes = _read_at_most(stream, 4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataFormatError(f"{path}: truncated inside the IDX header.")
    shape = struct.unpack(f">{ndim}i", sizes)
    if any(s < 0 for s in shape):
        raise DataFormatError(f"{path}: negative size in the IDX header {shape}.")
    dtype = _IDX_TYPES[type_code]
    if max_values is not None and math.prod(shape) > max_values:
        raise DataFormatError(
            f"{path}: the IDX header announces shape {tuple(shape)} ({math.prod(shape):,} "
            f"values), more than the {max_values:,} values allowed; refused before reading it."
        )
    expected = math.prod(shape) * dtype.itemsize
    if expected > MAX_IDX_BYTES:
        raise DataFormatError(
            f"{path}: the IDX header announces shape {tuple(shape)} ({expected:,} bytes), more "
            f"than the {MAX_IDX_BYTES:,} bytes pyro-vae reads; refused before reading it."
        )
    array = _read_array(path, stream, shape, dtype)
    return torch.from_numpy(array)


def _read_array(
    path: Path, stream: IO[bytes], shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    """The array body, read straight into one growing buffer a chunk at a time (grown in place
    by ``realloc``, never copied whole): memory follows the bytes really there, and for an
    intact file ends at the decoded size, never a multiple of it. A file whose data run short
    or long is refused."""
    expected = math.prod(shape) * dtype.itemsize
    buffer = np.empty(min(expected, _CHUNK), dtype=np.uint8)
    filled = 0
    while filled < expected:
        if filled == len(buffer):
            try:
                buffer.resize(min(expected, 2 * len(buffer)), refcheck=False)
            except MemoryError:
                raise DataFormatError(
                    f"{path}: the IDX header announces shape {tuple(shape)} ({expected:,} "
                    "bytes), more memory than this machine can give."
                ) from None
        piece = stream.read(min(_CHUNK, len(buffer) - filled))
        if not piece:
            break
        buffer[filled : filled + len(piece)] = np.frombuffer(piece, dtype=np.uint8)
        filled += len(piece)
        del piece
    extra = stream.read(1) if filled == expected else b""
    if filled != expected or extra:
        what = "truncated" if filled < expected else "longer than its header says"
        found = f"{filled} bytes" if filled < expected else "more"
        raise DataFormatError(
            f"{path}: {what}: the header promises shape {tuple(shape)} ({expected} bytes of "
            f"data) but the file holds {found}. Download the file again."
        )
    array = buffer.view(dtype).reshape(shape)
    if not dtype.isnative:  # big-endian on disk: swapped in place to native order
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array


def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Read an IDX file (``.gz`` or not) into a tensor of its stored type and shape.

    Raises :class:`DataFormatError` naming the file and the problem if the header is invalid or
    the data is shorter or longer than the header promises. Reads are bounded by the header:
    the data are inflated straight into the one array they fill, so memory never exceeds the
    announced array (at most ``MAX_IDX_BYTES``) plus a few chunks.
    """
    path = Path(path)
    with open(path, "rb") as f:
        return read_idx_stream(path, f)


def read_idx_stream(
    path: str | os.PathLike, stream: IO[bytes], max_values: int | None = None
) -> torch.Tensor:
    """:func:`read_idx` on an open, seekable binary ``stream`` (``path`` names it in messages);
    a header announcing more than ``max_values`` values is refused before the data are read."""
    path = Path(path)
    head = stream.read(2)
    stream.seek(0)
    if head != _GZIP_MAGIC:
        return _parse_idx(path, stream, max_values)
    try:
        with gzip.GzipFile(fileobj=stream) as gz:
            return _parse_idx(path, gz, max_values)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataFormatError(
            f"{path}: the gzip stream is corrupt or truncated ({exc}). "
            "Download the file again or replace it with an intact copy."
        ) from exc


def write_idx(path: str | os.PathLike, tensor: torch.Tensor, compress: bool | None = None) -> None:
    """Write ``tensor`` as an IDX file, atomically; gzip-compressed if ``compress`` (default: if
    the name ends in ``.gz``)."""
    path = Path(path)
    if tensor.dtype not in _TORCH_TO_IDX:
        raise DataFormatError(f"IDX cannot store dtype {tensor.dtype}.")
    if compress is None:
        compress = path.suffix == ".gz"
    type_code = _TORCH_TO_IDX[tensor.dtype]
    header = struct.pack(">HBB", 0, type_code, tensor.dim())
    header += struct.pack(f">{tensor.dim()}i", *tensor.shape)
    body = tensor.contiguous().numpy().astype(_IDX_TYPES[type_code]).tobytes()
    # atomically: a fresh temporary file beside the target (created exclusively, never
    # following a link), flushed, then moved over the target
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            if compress:
                with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
                    gz.write(header + body)
            else:
                f.write(header + body)
            f.flush()
            os.fsync(f.fileno())
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), 0o644)  # a data file, not mkstemp's private 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
