"""Optional TensorBoard logging (``--tensorboard``): the scalars of ``metrics.jsonl``, one point
per epoch, written in TensorBoard's event-file format (records of ``Event`` protocol buffers, as
:class:`torch.utils.tensorboard.SummaryWriter` writes them) into ``RUN/tensorboard/``.

``tensorboard --logdir runs`` then shows every run's curves. The package is an optional extra
(``pip install tensorboard``); without it ``--tensorboard`` is refused before the
run starts. In a distributed run only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import shlex
import socket
import stat
import time
from numbers import Real
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, ConfigError
from ..infer.training import EpochRecord
from .checkpoint import make_directory
from .runs import RunDirectory

SUBDIRECTORY = "tensorboard"


def summary_writer_class() -> type:
    """:class:`torch.utils.tensorboard.SummaryWriter`, or a clear error when the
    ``tensorboard`` package is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ConfigError(
            "--tensorboard needs the tensorboard package, which is not installed: "
            'pip install tensorboard (or, in a checkout, pip install -e ".[tensorboard]"), or drop '
            f"--tensorboard ({exc})"
        ) from None
    return SummaryWriter


def check_directory(run: RunDirectory) -> None:
    """Refuse, before anything in the run is written, a ``RUN/tensorboard`` that is there but
    is not a real directory (a symbolic link, say to a directory outside the run, or a file):
    the logger would fail on it after ``config.json`` was rewritten."""
    path = run.file(SUBDIRECTORY)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return  # created by the logger
    if stat.S_ISDIR(mode):
        return
    what = "a symbolic link" if stat.S_ISLNK(mode) else "not a directory"
    moved = f"mv {shlex.quote(str(path))} {shlex.quote(str(path) + '.old')}"
    raise CheckpointError(
        f"{path}: refused: it is {what}, and --tensorboard writes only into a real directory "
        f"inside the run. Move it away ({moved}) and run the command again, or "
        "drop --tensorboard."
    )


class TensorBoardLogger:
    """An end-of-epoch callback: ``logger(record)`` adds every number of the trainer's record of
    an epoch (a metrics.jsonl line: ``train_objective``, ``val_elbo``, ``kl_weight``, ...) as a
    scalar at step ``epoch``.

    The event file is written here, in the calling thread, with TensorBoard's own record
    format: a full disk (or any failed write) raises :class:`OSError` naming the file at the
    epoch it happens, where ``SummaryWriter``'s background thread would print a traceback and
    lose the error. The file is created exclusively and never through a link."""

    def __init__(self, run: RunDirectory) -> None:
        summary_writer_class()  # the package is installed
        from tensorboard.summary.writer.record_writer import RecordWriter

        self.directory = make_directory(run.file(SUBDIRECTORY))
        self.path, handle = _new_event_file(self.directory)
        self._file = os.fdopen(handle, "wb")
        self._records = RecordWriter(self._file)
        try:
            self._write(_event(file_version="brain.Event:2"))
            self._flush()
        except OSError:
            with contextlib.suppress(OSError):
                self._file.close()  # the descriptor goes; its unwritten bytes cannot
            raise

    def __call__(self, record: EpochRecord) -> None:
        from torch.utils.tensorboard.summary import scalar

        for field in dataclasses.fields(record):
            value = getattr(record, field.name)
            if field.name != "epoch" and isinstance(value, Real) and not isinstance(value, bool):
                self._write(_event(summary=scalar(field.name, float(value)), step=record.epoch))
        self._flush()  # visible to a running `tensorboard` at once

    def close(self) -> None:
        if not self._file.closed:
            try:
                self._file.close()
            except OSError as exc:
                raise _naming(exc, self.path) from None

    def _write(self, event: Any) -> None:
        try:
            self._records.write(event.SerializeToString())
        except OSError as exc:
            raise _naming(exc, self.path) from None

    def _flush(self) -> None:
        try:
            self._file.flush()
        except OSError as exc:
            raise _naming(exc, self.path) from None


def _event(**fields: Any) -> Any:
    from tensorboard.compat.proto.event_pb2 import Event

    return Event(wall_time=time.time(), **fields)


_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL
for _name in ("O_NOFOLLOW", "O_CLOEXEC"):
    _FLAGS |= getattr(os, _name, 0)


def _new_event_file(directory: Path) -> tuple[Path, int]:
    """A new event file in ``directory``, named as TensorBoard names them
    (``events.out.tfevents.<time>.<host>.<pid>.<n>``), created exclusively."""
    stem = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}"
    for n in itertools.count():
        path = directory / f"{stem}.{n}"
        try:
            return path, os.open(path, _FLAGS, 0o644)
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` with the event file as its file name (the message names it)."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))
