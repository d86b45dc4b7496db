"""A run's evaluations, kept per estimator and setting: ``evaluation.json`` (the test split;
``evaluation_<split>.json`` for another) maps a key such as ``is-K5000`` or
``ais-T500-C8-L5`` to that estimate's summary, so a new evaluation never replaces one made
another way; the per-image values live in ``evaluation[_<split>]_<key>_points.pt``. BDMC
sandwiches (on simulated images, not a split) are kept under ``bdmc`` in ``evaluation.json``.

Files written by pyro-vae 0.1 (one flat importance-sampling summary per split) are read as the
entry ``is-K<K>``. Every file here is read as untrusted input: a malformed one is a clear
error that names it, never a traceback; a link, or anything but a bounded regular file, is
refused, never followed (:mod:`.run_files`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..store.evaluation import (
    EVALUATION_FORMAT,
    BDMCEvaluation,
    Estimate,
    Evaluations,
    estimate_key,
)
from .checkpoint import load_checkpoint
from .contents import points_problem
from .records import read_record
from .run_files import is_run_file, warn_if_link
from .run_tensors import Points, checked_points
from .runs import RunDirectory

__all__ = [
    "EVALUATION_FORMAT",
    "SPLITS",
    "Evaluations",
    "describe_key",
    "estimate_key",
    "find_estimate",
    "load_points",
    "per_image_log_px",
    "read_evaluations",
    "save_estimate",
]

SPLITS = ("test", "val", "train")
_REDO = "delete it (or the entry) and recompute it with pyro-vae evaluate RUN"


def describe_key(key: str) -> str:
    """Plain words for a key: ``importance sampling, K = 5000``; ``AIS, T = 500 steps, C = 8
    chains, L = 5 leapfrog steps``."""
    method, _, rest = key.partition("-")
    parts = dict((p[0], p[1:]) for p in rest.split("-") if p and p[0] in "KTCLNR" and p[1:])
    refined = f", q refined per image for {parts['R']} steps" if "R" in parts else ""
    if method == "is":
        return f"importance sampling, K = {parts.get('K', '?')}{refined}"
    words = (
        f"T = {parts.get('T', '?')} steps, C = {parts.get('C', '?')} chains, "
        f"L = {parts.get('L', '?')} leapfrog steps"
    )
    start = ", from the prior" if rest.endswith("-prior") else ""
    if method == "ais":
        return f"AIS, {words}{start}"
    if method == "gaps":
        return f"inference gaps{refined}, log p(x) by AIS with {words}{start}"
    return f"BDMC on {parts.get('N', '?')} simulated images, {words}{start}"


def _stem(split: str) -> str:
    return "evaluation" if split == "test" else f"evaluation_{split}"


def summary_name(split: str) -> str:
    return f"{_stem(split)}.json"


def points_name(split: str, key: str) -> str:
    return f"{_stem(split)}_{key}_points.pt"


def legacy_points_name(split: str) -> str:
    """Where version 0.1 kept a split's per-image values."""
    return f"{_stem(split)}_points.pt"


def read_evaluations(run: RunDirectory, split: str = "test") -> Evaluations:
    """The evaluations a run holds for ``split`` (none: an empty :class:`Evaluations`)."""
    if not run.has_file(summary_name(split)):  # a link there is refused, never followed
        return Evaluations(split=split)
    return read_record(run, summary_name(split), lambda v: Evaluations.from_json(v, split), _REDO)


def save_estimate(
    run: RunDirectory,
    estimate: Estimate | BDMCEvaluation,
    points: dict[str, Any],
    split: str = "test",
) -> str:
    """Add (or replace) one estimate and its per-image points, keeping every other entry;
    returns its key. BDMC sandwiches go under ``bdmc`` of the test file."""
    key = estimate.key
    with run.writing():  # read, merge and write under the run's lock
        # a link at the file is not the run's result: replaced below, never read
        linked = warn_if_link(
            run.file(summary_name(split)),
            "replaced by a file holding this estimate only (what it pointed to is not read)",
        )
        existing = Evaluations(split=split) if linked else read_evaluations(run, split)
        if existing.legacy:  # a 0.1 file: move its points file under the new name
            (old_key,) = existing.legacy
            legacy_points = run.file(legacy_points_name(split))
            if legacy_points.is_file() and not legacy_points.is_symlink():
                legacy_points.replace(run.file(points_name(split, old_key)))
        run.save_tensors(points_name(split, key), points)
        run.write_json(summary_name(split), existing.with_entry(estimate).to_json())
    return key


def load_points(run: RunDirectory, key: str, split: str = "test") -> Points:
    """The per-image values of one estimate (``log_px`` and what the method adds)."""
    path = run.file(points_name(split, key))
    if not run.has_file(path.name):
        legacy = run.file(legacy_points_name(split))  # a 0.1 run, not yet re-evaluated
        if key in read_evaluations(run, split).legacy and run.has_file(legacy.name):
            path = legacy
        else:
            raise CheckpointError(
                f"{path}: missing (the per-image values of {key}); recompute them with "
                "pyro-vae evaluate RUN"
            )
    points = load_checkpoint(path, root=run.path)
    if not isinstance(points, dict) or "log_px" not in points:
        raise CheckpointError(f"{path}: holds no per-image log_px; {_REDO}")
    summary = read_evaluations(run, split).estimates.get(key)
    expected = summary.num_examples if summary is not None else None
    problem = points_problem(points["log_px"], expected)
    if problem is not None:
        raise CheckpointError(f"{path}: {problem}; {_REDO}")
    return checked_points(points, path)  # and every other tensor in it dense


def find_estimate(
    run: RunDirectory, key: str, split: str = "test", **wanted: Any
) -> tuple[Estimate, Points] | None:
    """The estimate and per-image points of ``key`` when the run holds them and the estimate
    matches every ``wanted`` field (``dataset``, ``pixels``, ``seed``, ...); otherwise
    ``None`` (compute it). Lets scripts reuse an evaluation instead of repeating it."""
    summary = read_evaluations(run, split).estimates.get(key)
    if summary is None or any(getattr(summary, k, None) != v for k, v in wanted.items()):
        return None
    try:
        return summary, load_points(run, key, split)
    except CheckpointError:
        return None


def per_image_log_px(path: str | Path, key: str) -> torch.Tensor:
    """Per-image test log p(x) of ``key`` in a directory: a run's points file, or the flat
    ``evaluation_points.pt`` that version 0.1 and ``experiments/reference_vae.py`` write."""
    path = Path(path)
    new = path / points_name("test", key)
    found = new if is_run_file(new, root=path) else path / "evaluation_points.pt"
    points = load_checkpoint(found, root=path)
    if not isinstance(points, dict) or "log_px" not in points:
        raise CheckpointError(f"{path}: no per-image log_px for {key}")
    return checked_points(points, found).log_px
