"""The record of ``provenance.json``: what produced a run's files. One entry per command that
trained or evaluated the run (the first training, each resume, each evaluation): the command
line, the pyro-vae, Pyro, PyTorch and Python versions, pyro-vae's git commit where it runs from a
checkout, the host, platform and device, the time, and the checkpoint's epoch then."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .fields import Record, RecordError, count, items, text

PROVENANCE_FORMAT = 1
"""The version of ``provenance.json`` this package writes."""

MAX_ENTRIES = 1000
"""The entries a file keeps (the oldest go first); a file holding more is refused."""


@dataclass(frozen=True, kw_only=True)
class ProvenanceEntry(Record):
    """One command that wrote results into the run."""

    WHAT: ClassVar[str] = "a provenance entry"

    command: str = text()
    argv: str = text()
    time: str = text()
    epoch: int | None = count(0, optional=True)
    pyro_vae_version: str = text()
    git_commit: str | None = text(optional=True)
    pyro_version: str = text()
    torch_version: str = text()
    python_version: str = text()
    platform: str = text()
    host: str = text()
    device: str = text()


@dataclass(frozen=True, kw_only=True)
class Provenance(Record):
    """Every entry, oldest first."""

    WHAT: ClassVar[str] = "provenance.json"

    format: int = count(1)
    entries: tuple[ProvenanceEntry, ...] = items(ProvenanceEntry)

    def check(self) -> None:
        if self.format > PROVENANCE_FORMAT:
            raise RecordError(
                f"format {self.format} is newer than this pyro-vae reads ({PROVENANCE_FORMAT})"
            )
        if len(self.entries) > MAX_ENTRIES:
            raise RecordError(f"more than {MAX_ENTRIES} entries")

    def adding(self, entry: ProvenanceEntry) -> Provenance:
        """This record with ``entry`` last (and at most :data:`MAX_ENTRIES` entries)."""
        kept = (*self.entries, entry)[-MAX_ENTRIES:]
        return Provenance(format=PROVENANCE_FORMAT, entries=kept)
