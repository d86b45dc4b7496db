"""Reading a run directory as untrusted input: no link followed, regular files only, bounded.

A run directory may come from someone else, and what a command reads from it can end up in
what the user shares (``report.html`` embeds figures; the report quotes the configuration and
the result files). Every file a command reads from a run goes through :func:`open_file` with
the run directory as ``root``:

* below ``root``, no component is followed if it is a symbolic link (each one is opened
  relative to its parent with ``O_NOFOLLOW``): ``RUN/figures -> ~/Pictures`` or
  ``RUN/config.json -> ~/.config/x.json`` is refused, so nothing outside the run is read
  through it. ``root`` itself is the user's choice (the path on the command line) and may be
  a link, as for writes (:func:`.checkpoint.confined_to`);
* only a regular file is read: a FIFO, a device or a directory is refused without blocking;
* never more than the maximum of its kind (:data:`CONFIG`, :data:`METRICS`, ...), checked on
  the open file before a byte is read: a 3 GB sparse ``config.json`` is refused at once.

A refusal is a :class:`RunFileRefused` (a :class:`~pyro_vae.errors.CheckpointError`: exit
status 1) with one line naming the file (control characters of its name shown as escapes). A
missing file is :class:`FileNotFoundError`, for the caller to word. Nothing here imports
torch.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import CheckpointError
from .escape import terminal_text


@dataclass(frozen=True)
class FileKind:
    """What a file is (for the message) and the most bytes a file of that kind may hold."""

    what: str
    max_bytes: int


CONFIG = FileKind("configuration (config.json)", 1 << 20)
METRICS = FileKind("metrics file (metrics.jsonl)", 64 << 20)
RESULTS = FileKind("result file (evaluation, baseline, interpolation)", 64 << 20)
FIGURE = FileKind("figure", 64 << 20)
TENSORS = FileKind("checkpoint or tensor file", 16 << 30)

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_READ = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO opens without waiting for a writer
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_DIR_FD = {os.open, os.stat} <= os.supports_dir_fd
"""Whether this platform works relative to directory descriptors (POSIX does)."""


class RunFileRefused(CheckpointError):
    """A file of a run directory that pyro-vae will not read: a symbolic link (or one on the
    way to it), not a regular file, or larger than its kind allows."""


def _link(where: Path) -> RunFileRefused:
    return RunFileRefused(
        f"{terminal_text(where)}: refused: a symbolic link, and pyro-vae never reads through "
        "a link inside a run directory (it could lead to any file of yours). Put the file "
        "itself there, or remove the link."
    )


def _not_regular(where: Path) -> RunFileRefused:
    return RunFileRefused(
        f"{terminal_text(where)}: refused: not a regular file (a directory, FIFO, socket or "
        "device); pyro-vae reads only regular files from a run directory."
    )


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _too_large(where: Path, size: int, kind: FileKind) -> RunFileRefused:
    return RunFileRefused(
        f"{terminal_text(where)}: refused: {_size(size)}, more than a {kind.what} may hold "
        f"({_size(kind.max_bytes)}); pyro-vae never writes one that large. Remove or replace "
        "it."
    )


def _check_open(fd: int, where: Path, kind: FileKind) -> None:
    """Refuse what ``fd`` holds unless it is a regular file within ``kind``'s size."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(where)
    if st.st_size > kind.max_bytes:
        raise _too_large(where, st.st_size, kind)


def _relative_parts(path: Path, root: Path) -> tuple[str, ...]:
    parts = path.relative_to(root).parts  # ValueError: not below root (a caller's mistake)
    if not parts or any(p in (os.curdir, os.pardir) for p in parts):
        raise ValueError(f"{path} is not a file below {root}")
    return parts


def _open_parent(root: Path, parts: tuple[str, ...]) -> int:
    """A descriptor of the directory holding ``root/parts``, reached without following a link
    below ``root``."""
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    here = root
    try:
        for part in parts[:-1]:
            here = here / part
            st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise _link(here)
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(here))
            try:
                sub = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.EMLINK):  # replaced by a link meanwhile
                    raise _link(here) from None
                raise
            os.close(fd)
            fd = sub
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_below(path: Path, root: Path, kind: FileKind | None) -> int:
    parts = _relative_parts(path, root)
    if not _DIR_FD:  # no *at() calls (Windows): each component checked by path
        return _open_by_path(path, root, parts, kind)
    dir_fd = _open_parent(root, parts)
    try:
        st = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise _link(path)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path)
        try:
            fd = os.open(parts[-1], _READ | _NOFOLLOW, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EMLINK):
                raise _link(path) from None
            raise
    finally:
        os.close(dir_fd)
    return _checked(fd, path, kind)


def _open_by_path(path: Path, root: Path, parts: tuple[str, ...], kind: FileKind | None) -> int:
    here = root
    for part in parts:
        here = here / part
        if here.is_symlink():
            raise _link(here)
    if not path.is_file():
        if path.exists():
            raise _not_regular(path)
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    return _checked(os.open(path, _READ | _NOFOLLOW | getattr(os, "O_BINARY", 0)), path, kind)


def _checked(fd: int, path: Path, kind: FileKind | None) -> int:
    try:
        _check_open(fd, path, kind or FileKind("file", 1 << 62))
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file(
    path: str | os.PathLike, kind: FileKind, *, root: str | os.PathLike | None = None
) -> BinaryIO:
    """``path`` opened for reading (binary), refused with :class:`RunFileRefused` unless it
    is a regular file of at most ``kind.max_bytes``. With ``root`` (the run directory
    ``path`` lies in), no component below ``root`` may be a symbolic link; without it,
    ``path`` is taken as the user gave it (a file named on the command line). A missing
    file: :class:`FileNotFoundError` (:class:`NotADirectoryError` when a directory on the
    way is a file)."""
    path = Path(path)
    if root is None:
        fd = _checked(os.open(path, _READ | getattr(os, "O_BINARY", 0)), path, kind)
    else:
        fd = _open_below(path, Path(root), kind)
    return os.fdopen(fd, "rb")


def read_bytes(
    path: str | os.PathLike, kind: FileKind, *, root: str | os.PathLike | None = None
) -> bytes:
    """The bytes of ``path``, read as :func:`open_file` allows (and never more than
    ``kind.max_bytes``, should the file grow meanwhile)."""
    with open_file(path, kind, root=root) as f:
        data = f.read(kind.max_bytes + 1)
    if len(data) > kind.max_bytes:
        raise _too_large(Path(path), len(data), kind)
    return data


def read_text(
    path: str | os.PathLike, kind: FileKind, *, root: str | os.PathLike | None = None
) -> str:
    """The text (UTF-8) of ``path``, read as :func:`read_bytes` does; text that is not UTF-8
    raises :class:`UnicodeDecodeError`."""
    return read_bytes(path, kind, root=root).decode("utf-8")


def is_run_file(path: str | os.PathLike, *, root: str | os.PathLike) -> bool:
    """Whether ``path`` (below the run directory ``root``) is a regular file: ``False`` when
    nothing is there (or a directory on the way is missing or a file); refused with
    :class:`RunFileRefused` when it, or a directory on the way, is a symbolic link, or it is
    not a regular file. Nothing is opened but directories."""
    path, root = Path(path), Path(root)
    parts = _relative_parts(path, root)
    try:
        if not _DIR_FD:
            os.close(_open_by_path(path, root, parts, None))
            return True
        dir_fd = _open_parent(root, parts)
        try:
            st = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
        finally:
            os.close(dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if stat.S_ISLNK(st.st_mode):
        raise _link(path)
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path)
    return True


def warn_if_link(path: str | os.PathLike, consequence: str) -> bool:
    """Say on stderr that ``path`` (a run file a command is about to replace) is a symbolic
    link, never followed, and ``consequence`` (what replacing it means); whether it is one."""
    if not os.path.islink(path):
        return False
    print(
        f"pyro-vae: warning: {terminal_text(path)} is a symbolic link, not followed: {consequence}",
        file=sys.stderr,
    )
    return True
