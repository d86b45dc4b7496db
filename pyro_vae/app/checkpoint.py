"""Crash-safe, link-safe writing and code-free loading of checkpoints and run files.

* Every file is written to a fresh temporary file created exclusively (``O_CREAT | O_EXCL |
  O_NOFOLLOW``, a random name) in the target's directory, flushed to disk, then moved over the
  target with :func:`os.replace` (atomic on POSIX): a crash leaves either the old file or the
  new one, never half of one. A target that is a symbolic link is replaced, not written
  through, and a planted link at any temporary name is never followed.
* While a thread writes a run directory (:meth:`RunDirectory.writing` calls
  :func:`confined_to`), no directory below the run's own path is followed if it is a symbolic
  link: ``RUN/figures -> /etc`` is refused, so nothing is written outside the run.
* Checkpoints are loaded with ``torch.load(..., weights_only=True)``: only tensors and plain
  containers are unpickled, so a checkpoint from someone else can never run code. A file that
  would need more is refused with :class:`CheckpointError`, as is a corrupt or truncated one.
"""

from __future__ import annotations

import contextvars
import errno
import os
import pickle
import secrets
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import CheckpointError, first_line
from .run_files import TENSORS, open_file

if TYPE_CHECKING:
    import torch

CHECKPOINT_FORMAT = 1

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FD = {os.open, os.mkdir, os.rename, os.unlink} <= os.supports_dir_fd
"""Whether this platform works relative to directory descriptors (POSIX does)."""

_CONFINED: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "pyro_vae_confined_roots", default=()
)


@contextmanager
def confined_to(root: str | os.PathLike) -> Iterator[None]:
    """Within this block (in this thread), writes below ``root`` never follow a symbolic link
    in a directory below ``root`` (``root`` itself may be one: the user's choice)."""
    token = _CONFINED.set((*_CONFINED.get(), os.path.abspath(root)))
    try:
        yield
    finally:
        _CONFINED.reset(token)


def _confining_root(directory: str) -> str | None:
    for root in reversed(_CONFINED.get()):
        if directory == root or directory.startswith(root.rstrip(os.sep) + os.sep):
            return root
    return None


def _refuse_link(where: str) -> CheckpointError:
    return CheckpointError(
        f"{where}: refused: it is a symbolic link (or a file), not a directory, and pyro-vae "
        f"never writes through a link inside a run directory. Remove it (rm {where}) and run "
        "the command again."
    )


def _open_directory(directory: Path) -> int:
    """A descriptor of ``directory``, created if missing; below a confining root each component
    is created or opened without following links."""
    target = os.path.abspath(directory)
    root = _confining_root(target)
    if root is None:
        os.makedirs(target, exist_ok=True)
        return os.open(target, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    here = root
    try:
        for part in Path(target).relative_to(root).parts:
            here = os.path.join(here, part)
            try:
                os.mkdir(part, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                sub = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _refuse_link(here) from None
                raise
            os.close(fd)
            fd = sub
    except BaseException:
        os.close(fd)
        raise
    return fd


def _create_temporary(dir_fd: int, name: str) -> tuple[int, str]:
    """A new, empty file ``.NAME.RANDOM.tmp`` in the directory, created exclusively (never a
    file or link that was there before), with the mode an ordinary file gets (0666 less the
    umask), so colleagues read a run's results where the umask lets them."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    for _ in range(100):
        tmp = f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666, dir_fd=dir_fd), tmp  # the umask applies
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", name)


def _atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    path = Path(path)
    try:
        if _DIR_FD:
            _atomic_write_at(path, write)
        else:  # no *at() calls (Windows): mkstemp is exclusive there too
            _atomic_write_by_path(path, write)
    except OSError as exc:  # name the file meant, not a temporary one
        raise OSError(exc.errno, exc.strerror or first_line(exc), str(path)) from exc
    except RuntimeError as exc:  # torch.save's writer on a full disk: "inline_container.cc"
        raise OSError(
            errno.EIO, f"could not be written (torch said: {first_line(exc)})", str(path)
        ) from exc


def _atomic_write_at(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    dir_fd = _open_directory(path.parent)
    try:
        fd, tmp = _create_temporary(dir_fd, path.name)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
            raise
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        except OSError:
            pass
    finally:
        os.close(dir_fd)


def _atomic_write_by_path(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    root = _confining_root(os.path.abspath(path.parent))
    if root is not None:
        here = Path(root)
        for part in Path(os.path.abspath(path.parent)).relative_to(root).parts:
            here = here / part
            if here.is_symlink() or (here.exists() and not here.is_dir()):
                raise _refuse_link(str(here))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp's 0600, made an ordinary file's
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def current_umask() -> int:
    """The process's umask (read by setting and restoring it: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_file(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` atomically through ``write(f)``, ``f`` a binary file opened for writing
    (a figure's ``savefig``, ``torch.save``, ...)."""
    _atomic_write(path, write)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    _atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Atomically save ``state`` (tensors, numbers, strings and containers of them)."""
    import torch  # here, not above: the configuration writes through this module, and the
    # command line's parser reads the configuration without loading torch

    payload = {"format": CHECKPOINT_FORMAT, **state}
    _atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(
    path: str | os.PathLike,
    map_location: str | torch.device | None = "cpu",
    *,
    root: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, refusing anything unsafe; with
    ``root`` (the run directory it lies in), never through a link below ``root``."""
    import torch  # (see save_checkpoint)

    path = Path(path)
    try:
        f = open_file(path, TENSORS, root=root)  # a bounded regular file
    except (FileNotFoundError, NotADirectoryError):
        raise CheckpointError(f"{path}: no checkpoint there.") from None
    try:
        with f:
            with warnings.catch_warnings():  # a sparse tensor is refused later, by name
                warnings.filterwarnings("ignore", "Validating sparse tensor invariants")
                state = torch.load(f, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused: the file contains Python objects other than tensors and plain "
            "containers, which could run code when loaded. Only load checkpoints written by "
            f"pyro-vae. (torch said: {first_line(exc)})"
        ) from exc
    except Exception as exc:  # garbage makes the unpickler fail in any way
        # (IndexError, KeyError, struct.error, ...); none of it can run code under weights_only
        raise CheckpointError(
            f"{path}: corrupt or truncated checkpoint ({first_line(exc)})."
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a pyro-vae checkpoint (format {CHECKPOINT_FORMAT}).")
    if _holds_meta_tensor(state):
        raise CheckpointError(
            f"{path}: refused: a tensor in it lies on PyTorch's 'meta' device (a shape without "
            "values), which pyro-vae never saves. The checkpoint is corrupt or not pyro-vae's."
        )
    return state


def _holds_meta_tensor(value: Any, depth: int = 0) -> bool:
    """Whether a loaded state holds a tensor without values (``map_location`` leaves a
    ``meta`` tensor where it is, and reading one fails deep inside the caller)."""
    import torch  # (see save_checkpoint)

    if isinstance(value, torch.Tensor):
        return value.is_meta
    if depth > 32:  # pyro-vae's own states nest a few levels
        return False
    if isinstance(value, dict):
        value = value.values()
    if isinstance(value, (list, tuple, type({}.values()))):
        return any(_holds_meta_tensor(v, depth + 1) for v in value)
    return False


def make_directory(path: str | os.PathLike) -> Path:
    """Create ``path`` (and its parents) if missing, the way the writers above do: below a run
    being written, no component is a symbolic link (one is refused with
    :class:`CheckpointError`). For a writer that opens its own files inside (TensorBoard's)."""
    os.close(_open_directory(Path(path)))
    return Path(path)
