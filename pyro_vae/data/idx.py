"""Reading and writing the IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed.

An IDX file is a 4-byte magic number ``00 00 <type> <ndim>``, then ``ndim`` big-endian int32
sizes, then the array in C order (big-endian for multi-byte types). torchvision reads only the
uncompressed files it downloaded itself and fails obscurely on a truncated one; this reader takes
``.gz`` or plain files and says exactly what is wrong with a bad one.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

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


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head != _GZIP_MAGIC:
            return f.read()
        try:
            with gzip.GzipFile(fileobj=f) as gz:
                return gz.read()
        except (EOFError, OSError, zlib.error) as exc:
            raise DataFormatError(
                f"{path}: the gzip stream is corrupt or truncated ({exc}). "
                "Download the file again or replace it with an intact copy."
            ) from exc


def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Read an IDX file (``.gz`` or not) into a tensor of its stored type and shape.

    Raises :class:`DataFormatError` naming the file and the problem if the header is invalid or
    the data is shorter or longer than the header promises.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataFormatError(f"{path}: too short to be an IDX file ({len(raw)} bytes).")
    zero, type_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or type_code not in _IDX_TYPES or ndim == 0:
        raise DataFormatError(
            f"{path}: not an IDX file (magic bytes {raw[:4].hex()}; expected 0000 followed by a "
            "type code 08/09/0b/0c/0d/0e and the number of dimensions)."
        )
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataFormatError(f"{path}: truncated inside the IDX header.")
    shape = struct.unpack(f">{ndim}i", raw[4:header_len])
    if any(s < 0 for s in shape):
        raise DataFormatError(f"{path}: negative size in the IDX header {shape}.")
    dtype = _IDX_TYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(raw) - header_len
    if found != expected:
        what = "truncated" if found < expected else "longer than its header says"
        raise DataFormatError(
            f"{path}: {what}: the header promises shape {tuple(shape)} ({expected} bytes of "
            f"data) but the file holds {found} bytes. Download the file again."
        )
    array = np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=header_len)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="))).reshape(shape)


def write_idx(path: str | os.PathLike, tensor: torch.Tensor, compress: bool | None = None) -> None:
    """Write ``tensor`` as an IDX file; gzip-compressed if ``compress`` (default: if the name
    ends in ``.gz``)."""
    path = Path(path)
    if tensor.dtype not in _TORCH_TO_IDX:
        raise DataFormatError(f"IDX cannot store dtype {tensor.dtype}.")
    if compress is None:
        compress = path.suffix == ".gz"
    type_code = _TORCH_TO_IDX[tensor.dtype]
    header = struct.pack(">HBB", 0, type_code, tensor.dim())
    header += struct.pack(f">{tensor.dim()}i", *tensor.shape)
    body = tensor.contiguous().numpy().astype(_IDX_TYPES[type_code]).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + body)
