"""The kind of data a user's file holds (binary, integer levels, counts, continuous): inferred
from its values, checked when the user names it, and the values stored to match."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataFormatError
from .files_io import CHUNK

KINDS = ("binary", "levels", "counts", "continuous")
"""The kinds of data, from the narrowest to the widest."""
_MAX_EXACT = 2**53
_F32_MAX = float(np.finfo(np.float32).max)
_NEEDS = {
    "binary": "only the values 0 and 1",
    "levels": "integers from 0 to 255",
    "counts": "non-negative integers",
}


@dataclass(frozen=True)
class Facts:
    """The smallest and largest value, and whether every value is an integer."""

    low: float
    high: float
    integral: bool

    def __str__(self) -> str:
        ints = "integers" if self.integral else "not all integers"
        return f"values from {self.low:g} to {self.high:g}, {ints}"


def _refuse_non_finite(path: Path, values: np.ndarray, start: int, bad: np.ndarray) -> None:
    flat = values.reshape(-1)
    at = start + int(np.argmax(bad))
    per = math.prod(values.shape[1:])
    position = np.unravel_index(at % per, values.shape[1:])
    what = "NaN" if np.isnan(flat[at]) else "an infinite value"
    nan, inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
    raise DataFormatError(
        f"{path}: {what} at example {at // per}, position {tuple(int(p) for p in position)} "
        f"({nan} NaN and {inf} infinite values in all); remove or impute them before training."
    )


def facts(path: Path, values: np.ndarray) -> Facts:
    """The :class:`Facts` of ``values`` ``[N, ...]`` (scanned a chunk at a time, so that the
    temporaries stay small), a NaN or infinity refused naming the file and where it is."""
    flat = values.reshape(-1)
    if values.dtype.kind in "biu":
        return Facts(float(flat.min()), float(flat.max()), True)
    low, high, integral = math.inf, -math.inf, True
    for start in range(0, flat.size, CHUNK):
        part = flat[start : start + CHUNK]
        finite = np.isfinite(part)
        if not finite.all():
            _refuse_non_finite(path, values, start, ~finite)
        low, high = min(low, float(part.min())), max(high, float(part.max()))
        integral = integral and bool((part == np.floor(part)).all())
    return Facts(low, high, integral)


def infer_kind(found: Facts, *, image_like: bool) -> str:
    """The narrowest kind that fits: ``levels`` only for image-like data (images, ``uint8``
    arrays, examples with two or more axes), else non-negative integers are ``counts``."""
    if found.integral and found.low >= 0:
        if found.high <= 1:
            return "binary"
        if image_like and found.high <= 255:
            return "levels"
        if found.high <= _MAX_EXACT:
            return "counts"
    return "continuous"


def _fits(found: Facts, kind: str, image_levels: int | None) -> bool:
    if kind == "continuous":
        return max(abs(found.low), abs(found.high)) <= _F32_MAX
    if not (found.integral and found.low >= 0):
        return False
    top = {"binary": 1, "levels": 255 if image_levels is None else image_levels - 1}
    return found.high <= top.get(kind, _MAX_EXACT)


def fit_kind(
    path: Path,
    values: np.ndarray,
    found: Facts,
    kind: str,
    inferred: str,
    image_levels: int | None = None,
) -> tuple[np.ndarray, int | None]:
    """``values`` stored for ``kind`` (``uint8`` binary/levels, ``int64`` counts, ``float32``
    continuous) and the number of levels (``image_levels`` when the format fixes them, else the
    largest value + 1); a kind that does not fit the values is refused, saying what they are."""
    if not _fits(found, kind, image_levels):
        if kind == "continuous":
            raise DataFormatError(
                f"{path}: {found}: too large for 32-bit floating point; rescale the data."
            )
        needs = _NEEDS[kind]
        if kind == "levels" and image_levels is not None:
            needs = f"integers from 0 to {image_levels - 1}"
        raise DataFormatError(
            f"{path}: kind {kind!r} needs {needs}, but the data hold {found} (they look "
            f"{inferred}); choose another kind or transform the data."
        )
    if kind == "continuous":
        return values.astype(np.float32, copy=False), None
    if kind == "counts":
        return values.astype(np.int64, copy=False), None
    levels = 2 if kind == "binary" else image_levels or max(2, int(found.high) + 1)
    return values.astype(np.uint8, copy=False), levels
