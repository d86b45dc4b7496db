"""Reading a run's evaluations in tests, through the library's own reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyro_vae.app.evaluations import read_evaluations
from pyro_vae.app.runs import RunDirectory


def is_summary(run_dir: str | Path, split: str = "test") -> dict[str, Any]:
    """The importance-sampling summary with the largest K that the run holds for ``split``
    (its JSON value: as written in the file)."""
    found = read_evaluations(RunDirectory(Path(run_dir)), split).largest_is()
    assert found is not None, f"no importance-sampling evaluation in {run_dir}"
    return found.to_json()
