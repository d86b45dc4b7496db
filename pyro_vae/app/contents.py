"""Checks of the values inside run files (which may come from someone else): each returns the
problem in words, or ``None``, and the reader names the file. Parsing is
:mod:`.strict_json`'s; these check each field's type and range, so that what passes can be
plotted, formatted and subtracted without overflowing, failing or drawing nothing."""

from __future__ import annotations

import math
from typing import Any

import torch

MAX_VALUE = float(torch.finfo(torch.float32).max)
"""The largest size of a number a model computes (in float32); more is not a result."""

MAX_COUNT = 10**15
"""The largest epoch, step or example count a run file may hold."""

MAX_POINTS = 10**8
"""The largest number of per-image values a points file may hold."""

METRICS_INTEGERS = ("epoch", "steps", "examples_seen")
METRICS_NUMBERS = ("train_objective", "val_elbo", "epoch_seconds", "wall_seconds", "kl_weight")
METRICS_OPTIONAL = ("test_elbo",)


def is_value(value: Any) -> bool:
    """A finite number (not a boolean) of at most :data:`MAX_VALUE` in size."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) <= MAX_VALUE
    )


def is_count(value: Any, minimum: int = 0) -> bool:
    """An integer (not a boolean) from ``minimum`` to :data:`MAX_COUNT`."""
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= MAX_COUNT


def metrics_record_problem(record: Any) -> str | None:
    """What is wrong with one parsed line of ``metrics.jsonl``, or ``None``: a JSON object with
    an integer ``epoch`` >= 1 and numbers ``train_objective`` and ``val_elbo``; every field it
    holds of :class:`~pyro_vae.infer.training.EpochRecord` of the right type and range."""
    required = ("epoch", "train_objective", "val_elbo")
    if not isinstance(record, dict) or any(name not in record for name in required):
        return (
            "not a metrics record (a JSON object with an integer epoch and numbers "
            "train_objective and val_elbo)"
        )
    for name in METRICS_INTEGERS:
        low = 1 if name == "epoch" else 0
        if name in record and not is_count(record[name], minimum=low):
            return f"{name} must be an integer from {low} to {MAX_COUNT:.0e}, got " + _shown(
                record[name]
            )
    for name in METRICS_NUMBERS + METRICS_OPTIONAL:
        value = record.get(name)
        optional = name in METRICS_OPTIONAL and value is None
        if name in record and not optional and not is_value(value):
            return f"{name} must be a finite number of at most {MAX_VALUE:.3g} in size, got " + (
                _shown(value)
            )
    return None


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


def _shown(value: Any) -> str:
    """``repr`` of a value, cut short (a crafted file can hold a long string)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:36] + "..."
