"""The writer's lock of a run directory, and what a killed writer leaves behind.

One process, and one thread in it, writes a run at a time: it holds ``RUN/.lock`` (``flock``),
opened without following a link and released on every way out (and by the system when the
process dies, so a killed process never blocks a run). Once a writer holds the lock, no live
writer owns the temporary files of :mod:`.checkpoint`'s atomic writers still in the run: they
are orphans and go. A stale marker (see :data:`.runs.STALE_MARKER`) is believed only when it is
the small file pyro-vae writes.
"""

from __future__ import annotations

import json
import os
import re
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import CheckpointError, RunInUseError

try:
    import fcntl
except ImportError:  # Windows: no flock; one writer per run is then the user's to ensure
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
TEMPORARY_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")
"""The name of a temporary file of :mod:`.checkpoint`'s writers: ``.NAME.<8 random>.tmp``."""
_DIRECTORY_FLAGS = (
    getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)
_MAX_ORPHAN_DEPTH = 4

_HELD: dict[tuple[str, int], list[int]] = {}
"""The run locks this process holds: (real path, thread) -> [descriptor, depth]."""


@contextmanager
def holding_lock(run_path: Path) -> Iterator[bool]:
    """Hold the lock of the run at ``run_path`` for the block, in this thread; yields whether
    this block took it (``False``: an outer block of the same thread holds it already).
    Refused with :class:`RunInUseError` while another process, or thread, holds it."""
    key = (os.path.realpath(run_path), threading.get_ident())
    held = _HELD.get(key)
    if held is not None:
        held[1] += 1
        try:
            yield False
        finally:
            held[1] -= 1
        return
    fd = _lock(run_path)
    _HELD[key] = [fd, 1]
    try:
        yield True
    finally:
        del _HELD[key]
        os.close(fd)  # releases the lock


def _lock(run_path: Path) -> int:
    path = run_path / LOCK_FILE
    flags = os.O_RDONLY | os.O_CREAT  # never follows a link; a FIFO does not block
    for name in ("O_NOFOLLOW", "O_CLOEXEC", "O_NONBLOCK"):
        flags |= getattr(os, name, 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if os.path.islink(path):
            raise CheckpointError(
                f"{path} is a symbolic link; pyro-vae never follows one inside a run "
                f"directory. Remove it (rm {path}) and run the command again."
            ) from None
        raise CheckpointError(
            f"cannot lock {run_path} ({exc.strerror}): pyro-vae writes into the run "
            "directory and needs it to exist and be writable."
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CheckpointError(f"{path} is not a regular file; remove it and run the command again.")
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunInUseError(
                f"{run_path} is in use: another pyro-vae process is writing it. Wait "
                "until that process has finished (or stop it), then run this command again."
            ) from None
    return fd


def remove_orphaned_temporaries(run_path: Path) -> list[str]:
    """Remove the temporary files a killed writer left (``.NAME.XXXXXXXX.tmp``, the writers'
    own pattern) in the run directory and the directories below it; for the holder of the
    run's lock, so that no live writer owns them. Directories are opened without following
    links and a link at such a name is removed, never followed. Returns the removed paths,
    relative to the run."""
    removed: list[str] = []
    if not ({os.open, os.unlink} <= os.supports_dir_fd and os.scandir in os.supports_fd):
        return removed  # no descriptor-relative calls (Windows): left alone
    try:
        fd = os.open(run_path, os.O_RDONLY | _DIRECTORY_FLAGS)
    except OSError:
        return removed
    try:
        _remove_orphans_in(fd, "", removed, depth=0)
    finally:
        os.close(fd)
    return removed


def _remove_orphans_in(dir_fd: int, prefix: str, removed: list[str], depth: int) -> None:
    """Remove orphaned temporary files in the directory ``dir_fd`` and (not following links)
    the directories below it, down to a small depth."""
    with os.scandir(dir_fd) as entries:
        for entry in list(entries):
            if entry.is_dir(follow_symlinks=False):
                if depth >= _MAX_ORPHAN_DEPTH:
                    continue
                try:
                    sub = os.open(entry.name, os.O_RDONLY | _DIRECTORY_FLAGS, dir_fd=dir_fd)
                except OSError:  # replaced by a link meanwhile, or unreadable: leave it
                    continue
                try:
                    _remove_orphans_in(sub, f"{prefix}{entry.name}/", removed, depth + 1)
                finally:
                    os.close(sub)
            elif TEMPORARY_NAME.match(entry.name):
                try:
                    os.unlink(entry.name, dir_fd=dir_fd)  # a link itself, never its target
                except FileNotFoundError:
                    continue
                removed.append(prefix + entry.name)


def read_stale_marker(marker: Path) -> int | None:
    """The checkpoint epoch a stale marker records. Anything but the small regular file
    pyro-vae writes there (a directory, a link, an unreadable or garbled file) is refused with
    :class:`CheckpointError` before anything is removed: derived files go only on the word of a
    marker that pyro-vae wrote."""
    refuse = (
        f"{marker}: not a marker pyro-vae wrote ({{}}); nothing was removed. Remove it "
        f"(rm -r {marker}) and run the command again."
    )
    try:
        fd = os.open(
            marker, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        )
    except OSError as exc:
        raise CheckpointError(refuse.format(exc.strerror or "unreadable")) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CheckpointError(refuse.format("not a regular file"))
        data = os.read(fd, 4097)
    except OSError as exc:
        raise CheckpointError(refuse.format(exc.strerror or "unreadable")) from None
    finally:
        os.close(fd)
    try:
        epoch = json.loads(data)["epoch"] if len(data) <= 4096 else ""
    except (ValueError, KeyError, TypeError, RecursionError):
        epoch = ""
    if epoch is not None and not (isinstance(epoch, int) and not isinstance(epoch, bool)):
        raise CheckpointError(refuse.format("not a JSON object with an integer epoch"))
    return epoch
