"""Crash-safe writing and code-free loading of checkpoints and run files.

* Every file is written to a temporary file in the same directory, flushed to disk, then moved
  over the target with :func:`os.replace` (atomic on POSIX and Windows): a crash leaves either
  the old file or the new one, never half of one.
* Checkpoints are loaded with ``torch.load(..., weights_only=True)``: only tensors and plain
  containers are unpickled, so a checkpoint from someone else can never run code. A file that
  would need more is refused with :class:`CheckpointError`, as is a corrupt or truncated one.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from ..errors import CheckpointError, first_line

CHECKPOINT_FORMAT = 1


def _atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
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


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    _atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Atomically save ``state`` (tensors, numbers, strings and containers of them)."""
    payload = {"format": CHECKPOINT_FORMAT, **state}
    _atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device | None = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, refusing anything unsafe."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint there.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
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
    return state
