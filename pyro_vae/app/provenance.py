"""Provenance: what produced a run's numbers (:mod:`pyro_vae.store.provenance`), collected from
this process and added to ``RUN/provenance.json`` by each command that trains or evaluates."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
from functools import cache
from pathlib import Path

from .. import __version__
from ..errors import CheckpointError, first_line
from ..store.provenance import PROVENANCE_FORMAT, Provenance, ProvenanceEntry
from .checkpoint import atomic_write_text
from .escape import terminal_text
from .records import read_record
from .runs import RunDirectory

FILE = "provenance.json"


@cache
def git_commit() -> str | None:
    """The commit of the checkout pyro-vae runs from (``+dirty`` with uncommitted changes), or
    ``None`` for an installed package or where git is missing."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None


def entry(command: str, device: str, epoch: int | None) -> ProvenanceEntry:
    """This process's entry: ``command`` (train, resume, evaluate, ...) on ``device`` with the
    checkpoint at ``epoch``."""
    import pyro
    import torch

    return ProvenanceEntry(
        command=command,
        argv=shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
        time=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        epoch=epoch,
        pyro_vae_version=__version__,
        git_commit=git_commit(),
        pyro_version=pyro.__version__,
        torch_version=torch.__version__,
        python_version=platform.python_version(),
        platform=platform.platform(),
        host=socket.gethostname(),
        device=str(device),
    )


def read_provenance(run: RunDirectory) -> Provenance:
    """The run's ``provenance.json`` (no entries for a run that has none: an older one)."""
    if not run.has_file(FILE):  # a link or a FIFO there is refused, not followed
        return Provenance(format=PROVENANCE_FORMAT, entries=())
    return read_record(run, FILE, Provenance.from_json, "it is not the file pyro-vae writes")


def record(run: RunDirectory, command: str, device: str, epoch: int | None) -> None:
    """Add this process's entry to ``RUN/provenance.json`` (atomically, holding the lock). A
    file there that is not one pyro-vae wrote never stops the command: it is moved aside to
    ``provenance.json.unreadable`` (a link as a link, never followed), said on stderr, and the
    record starts anew."""
    with run.writing():
        try:
            kept = read_provenance(run)
        except CheckpointError as exc:
            aside = run.file(FILE + ".unreadable")
            try:
                os.replace(run.file(FILE), aside)
            except OSError as failed:
                print(
                    terminal_text(f"note: {first_line(exc)}; provenance not recorded ({failed})"),
                    file=sys.stderr,
                )
                return
            print(terminal_text(f"note: {first_line(exc)}; moved to {aside.name}"), file=sys.stderr)
            kept = Provenance(format=PROVENANCE_FORMAT, entries=())
        atomic_write_text(run.file(FILE), _json(kept.adding(entry(command, device, epoch))))


def _json(provenance: Provenance) -> str:
    return json.dumps(provenance.to_json(), indent=2) + "\n"
