"""Checks of a command's paths that need no torch: a run directory that is not there, a directory
of runs that is not there, the same run named twice to ``compare``. The command line makes them
before it imports its job module (torch, Pyro and matplotlib take seconds to load), so that a
mistyped path gets its one-line message at once; the job modules make the same checks again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import CheckpointError, ConfigError

RUN_COMMANDS = ("evaluate", "report", "figures")
"""The commands whose ``RUN_DIR`` must be a run directory."""


def require_run_dir(path: str | os.PathLike) -> None:
    """Refuse (:class:`CheckpointError`, exit status 1) a path without ``config.json``, as
    :meth:`~pyro_vae.app.runs.RunDirectory.open` would."""
    config = Path(path) / "config.json"
    if not (Path(path).is_dir() and os.path.lexists(config)):  # what it is: the reader's call
        raise CheckpointError(f"{path}: not a run directory (no config.json there).")


def require_runs_dir(path: str | os.PathLike) -> None:
    """Refuse (:class:`ConfigError`) a directory of runs that is not a directory, as
    :func:`~pyro_vae.app.overview.list_runs` would."""
    if not Path(path).is_dir():
        raise ConfigError(
            f"{path}: no such directory of runs (give the directory train or run wrote "
            "into: their --runs-dir, default runs)"
        )


def run_labels(paths: Sequence[str | os.PathLike]) -> list[str]:
    """A distinct label per run for ``compare``: its directory's name, or as many trailing
    path components as tell it from the others of the same name (``runs/a`` and
    ``backup/a``). The same run named twice (``run`` and ``./run``, or through a link) is
    refused: a run compared with itself says nothing."""
    resolved = [Path(os.path.realpath(p)) for p in paths]
    seen: dict[Path, str | os.PathLike] = {}
    for given, real in zip(paths, resolved, strict=True):
        if real in seen:
            raise ConfigError(
                f"{seen[real]} and {given} are the same run directory ({real}): name each run once"
            )
        seen[real] = given
    depth = [1] * len(resolved)
    while True:
        labels = [str(Path(*p.parts[-d:])) for p, d in zip(resolved, depth, strict=True)]
        clashes = {label for label in labels if labels.count(label) > 1}
        if not clashes:
            return labels
        for i, label in enumerate(labels):
            if label in clashes and depth[i] < len(resolved[i].parts):
                depth[i] += 1
