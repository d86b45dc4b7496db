"""Checks of the tensors inside run files (which may come from someone else): each returns the
problem in words, or ``None``, and the reader names the file. The JSON files' fields are
checked by the records of :mod:`pyro_vae.store` (whose bounds and checks are re-exported
here)."""

from __future__ import annotations

from typing import Any

import torch

from ..store.fields import MAX_COUNT, MAX_VALUE, is_count, is_value, shown

__all__ = [
    "MAX_COUNT",
    "MAX_POINTS",
    "MAX_VALUE",
    "is_count",
    "is_value",
    "points_problem",
    "shown",
]

MAX_POINTS = 10**8
"""The largest number of per-image values a points file may hold."""


def points_problem(log_px: Any, expected: int | None = None) -> str | None:
    """What is wrong with a points file's per-image ``log_px``, or ``None``: a 1-D floating
    tensor with its own storage (not a view that repeats one value billions of times), of
    ``expected`` values when known (the summary's ``num_examples``), every one finite."""
    if not isinstance(log_px, torch.Tensor) or log_px.dim() != 1:
        return "log_px is not a vector of per-image values"
    if not log_px.is_floating_point():
        return f"log_px has dtype {log_px.dtype}, not a floating-point type"
    n = log_px.numel()
    if n > MAX_POINTS or (expected is not None and n != expected):
        wanted = f"the {expected} the summary names" if expected is not None else MAX_POINTS
        return f"log_px holds {n} values, not {wanted}"
    held = log_px.untyped_storage().nbytes() - log_px.storage_offset() * log_px.element_size()
    if n > 1 and (log_px.stride(0) == 0 or held < n * log_px.element_size()):  # any dense view
        return "log_px is not a plain vector (its values repeat one stored value)"
    if n < 2:
        return f"log_px holds {n} value{'s' * (n != 1)}; a standard error needs two or more"
    finite = torch.isfinite(log_px)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        return f"{bad} of its {n} per-image values are NaN or infinite"
    if float(log_px.abs().max()) > MAX_VALUE:
        return f"log_px holds values beyond {MAX_VALUE:.3g}"
    return None
