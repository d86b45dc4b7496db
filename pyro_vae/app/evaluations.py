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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, first_line
from .checkpoint import load_checkpoint
from .contents import is_count, is_value, points_problem
from .run_files import RESULTS, is_run_file, warn_if_link
from .run_tensors import checked_points
from .runs import RunDirectory
from .strict_json import JSONContentError, parse_json

EVALUATION_FORMAT = 2
SPLITS = ("test", "val", "train")
_REDO = "delete it (or the entry) and recompute it with pyro-vae evaluate RUN"


def estimate_key(summary: dict[str, Any]) -> str:
    """The key an estimate is kept under: ``is-K<K>``; ``ais-T<T>-C<C>-L<L>`` (``-prior``
    when started from the prior); ``bdmc-N<N>-T<T>-C<C>-L<L>``."""
    method = summary.get("method", "is")
    if method == "is":
        return f"is-K{summary['num_samples']}"
    tail = f"T{summary['num_steps']}-C{summary['num_chains']}-L{summary['num_leapfrog']}"
    tail += "-prior" if summary.get("start") == "prior" else ""
    if method == "ais":
        return f"ais-{tail}"
    if method == "bdmc":
        return f"bdmc-N{summary['num_examples']}-{tail}"
    raise ValueError(f"unknown estimation method {method!r}")


def describe_key(key: str) -> str:
    """Plain words for a key: ``importance sampling, K = 5000``; ``AIS, T = 500 steps, C = 8
    chains, L = 5 leapfrog steps``."""
    method, _, rest = key.partition("-")
    parts = dict((p[0], p[1:]) for p in rest.split("-") if p and p[0] in "KTCLN" and p[1:])
    if method == "is":
        return f"importance sampling, K = {parts.get('K', '?')}"
    words = (
        f"T = {parts.get('T', '?')} steps, C = {parts.get('C', '?')} chains, "
        f"L = {parts.get('L', '?')} leapfrog steps"
    )
    start = ", from the prior" if rest.endswith("-prior") else ""
    if method == "ais":
        return f"AIS, {words}{start}"
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


@dataclass
class Evaluations:
    """What a run holds for one split: estimates by key, BDMC sandwiches by key, and which
    keys came from a version-0.1 file (whose points file has the old name)."""

    split: str
    estimates: dict[str, dict[str, Any]] = field(default_factory=dict)
    bdmc: dict[str, dict[str, Any]] = field(default_factory=dict)
    legacy: set[str] = field(default_factory=set)

    def headline(self) -> tuple[str, dict[str, Any]] | None:
        """The estimate to quote in one line: the most expensive AIS (it is the tightest),
        else importance sampling with the largest K."""
        if not self.estimates:
            return None

        def cost(item: tuple[str, dict[str, Any]]) -> tuple[int, float]:
            s = item[1]
            if s.get("method") == "ais":
                return 1, s["num_steps"] * s["num_chains"] * s["num_leapfrog"]
            return 0, s["num_samples"]

        return max(self.estimates.items(), key=cost)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": EVALUATION_FORMAT, "split": self.split}
        out["estimates"] = self.estimates
        if self.bdmc:
            out["bdmc"] = self.bdmc
        return out


def _number(value: Any) -> bool:
    return is_value(value)


def _count(value: Any) -> bool:
    return is_count(value, minimum=1)


def _check_summary(summary: Any, where: str) -> dict[str, Any]:
    """An estimate's summary, checked field by field (an untrusted file)."""
    if not isinstance(summary, dict):
        raise CheckpointError(f"{where}: not a JSON object; {_REDO}")
    method = summary.get("method", "is")
    needed = {
        "is": ("num_samples",),
        "ais": ("num_steps", "num_chains", "num_leapfrog"),
        "bdmc": ("num_steps", "num_chains", "num_leapfrog", "num_examples"),
    }.get(method)
    if needed is None:
        raise CheckpointError(f"{where}: unknown method {method!r}; {_REDO}")
    for name in needed + (("num_examples",) if method != "bdmc" else ()):
        if not _count(summary.get(name)):
            raise CheckpointError(
                f"{where}: {name} must be a positive integer, got {summary.get(name)!r}; {_REDO}"
            )
    numbers = ("lower", "upper", "gap") if method == "bdmc" else ("log_px",)
    for name in numbers:
        if not _number(summary.get(name)):
            raise CheckpointError(
                f"{where}: {name} must be a finite number, got {summary.get(name)!r}; {_REDO}"
            )
    for name, value in summary.items():  # optional numbers: a number or null
        if name.endswith(("_se", "_mean", "_max", "_min", "_median")) and value is not None:
            if not _number(value):
                raise CheckpointError(
                    f"{where}: {name} must be a number or null, got {value!r}; {_REDO}"
                )
    return summary


def read_evaluations(run: RunDirectory, split: str = "test") -> Evaluations:
    """The evaluations a run holds for ``split`` (none: an empty :class:`Evaluations`)."""
    path = run.file(summary_name(split))
    out = Evaluations(split)
    if not run.has_file(summary_name(split)):  # a link there is refused, never followed
        return out
    try:
        raw = parse_json(run.read_bytes(summary_name(split), RESULTS))
    except JSONContentError as exc:
        raise CheckpointError(f"{path}: {first_line(exc)}; {_REDO}") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({first_line(exc)}); {_REDO}") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: not a JSON object; {_REDO}")
    if raw.get("format") != EVALUATION_FORMAT:  # pyro-vae 0.1: one flat IS summary
        summary = _check_summary({**raw, "method": "is"}, str(path))
        key = estimate_key(summary)
        out.estimates[key] = summary
        out.legacy.add(key)
        return out
    for section in ("estimates", "bdmc"):
        entries = raw.get(section, {})
        if not isinstance(entries, dict):
            raise CheckpointError(f"{path}: {section} must be a JSON object; {_REDO}")
        for key, summary in entries.items():
            checked = _check_summary(summary, f"{path}, {section}[{key!r}]")
            if estimate_key(checked) != key:
                raise CheckpointError(
                    f"{path}: the entry {key!r} holds an estimate of another kind "
                    f"({estimate_key(checked)}); {_REDO}"
                )
            getattr(out, section)[key] = checked
    return out


def save_estimate(
    run: RunDirectory, summary: dict[str, Any], points: dict[str, Any], split: str = "test"
) -> str:
    """Add (or replace) one estimate and its per-image points, keeping every other entry;
    returns its key. BDMC summaries go under ``bdmc`` of the test file."""
    key = estimate_key(summary)
    with run.writing():  # read, merge and write under the run's lock
        # a link at the file is not the run's result: replaced below, never read
        linked = warn_if_link(
            run.file(summary_name(split)),
            "replaced by a file holding this estimate only (what it pointed to is not read)",
        )
        existing = Evaluations(split) if linked else read_evaluations(run, split)
        if existing.legacy:  # a 0.1 file: move its points file under the new name
            (old_key,) = existing.legacy
            legacy_points = run.file(legacy_points_name(split))
            if legacy_points.is_file() and not legacy_points.is_symlink():
                legacy_points.replace(run.file(points_name(split, old_key)))
        section = existing.bdmc if summary.get("method") == "bdmc" else existing.estimates
        section[key] = summary
        run.save_tensors(points_name(split, key), points)
        run.write_json(summary_name(split), existing.to_json())
    return key


def load_points(run: RunDirectory, key: str, split: str = "test") -> dict[str, Any]:
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
    summary = read_evaluations(run, split).estimates.get(key, {})
    problem = points_problem(points["log_px"], summary.get("num_examples"))
    if problem is not None:
        raise CheckpointError(f"{path}: {problem}; {_REDO}")
    return checked_points(points, path)  # and every other tensor in it dense


def find_estimate(
    run: RunDirectory, key: str, split: str = "test", **wanted: Any
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The summary and per-image points of ``key`` when the run holds them and the summary
    matches every ``wanted`` field (data set, pixels, seed, ...); otherwise ``None`` (compute
    it). Lets scripts reuse an evaluation instead of repeating it."""
    summary = read_evaluations(run, split).estimates.get(key)
    if summary is None or any(summary.get(k) != v for k, v in wanted.items()):
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
    return checked_points(points, found)["log_px"]
