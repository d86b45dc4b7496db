"""Reading a typed record (:mod:`pyro_vae.store`) from a file of a run directory: a bounded
regular file, never through a link (:mod:`.run_files`), parsed with bounded numbers
(:mod:`pyro_vae.store.strict_json`) and checked field by field. Whatever is wrong with the file
is one line naming it (:class:`~pyro_vae.errors.CheckpointError`: exit status 1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..errors import CheckpointError, first_line
from ..store.baseline import Baseline
from ..store.fields import RecordError
from ..store.interpolation import Interpolation
from ..store.strict_json import JSONContentError, parse_json
from .run_files import RESULTS
from .runs import RunDirectory

T = TypeVar("T")

REDO_DERIVED = "delete it and recompute it (pyro-vae run --resume RUN)"
"""What to do about a bad baseline or interpolation file."""


def read_record(run: RunDirectory, name: str, parse: Callable[[object], T], redo: str) -> T:
    """The record ``parse`` (a ``from_json``) reads from ``RUN/name``; refused in one line
    (naming the file and ending with ``redo``) when the file is unreadable or malformed."""
    path = run.file(name)
    try:
        return parse(parse_json(run.read_bytes(name, RESULTS)))
    except (JSONContentError, RecordError) as exc:
        raise CheckpointError(f"{path}: {first_line(exc)}; {redo}") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({first_line(exc)}); {redo}") from None


def read_baseline(run: RunDirectory) -> Baseline | None:
    """The run's ``baseline.json``, or ``None`` when it has none."""
    if not run.has_file("baseline.json"):  # a link or a FIFO there is refused, not followed
        return None
    return read_record(run, "baseline.json", Baseline.from_json, REDO_DERIVED)


def read_interpolation(run: RunDirectory, name: str = "interpolation.json") -> Interpolation | None:
    """The run's ``interpolation.json`` (or ``name``), or ``None`` when it has none."""
    if not run.has_file(name):
        return None
    return read_record(run, name, Interpolation.from_json, REDO_DERIVED)
