"""Optional TensorBoard logging (``--tensorboard``): the scalars of ``metrics.jsonl``, one point
per epoch, written by :class:`torch.utils.tensorboard.SummaryWriter` into ``RUN/tensorboard/``.

``tensorboard --logdir runs`` then shows every run's curves. The package is an optional extra
(``pip install "pyro-vae[tensorboard]"``); without it ``--tensorboard`` is refused before the
run starts. In a distributed run only rank 0 writes.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

from ..errors import ConfigError
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
            'pip install "pyro-vae[tensorboard]" (or pip install tensorboard), or drop '
            f"--tensorboard ({exc})"
        ) from None
    return SummaryWriter


class TensorBoardLogger:
    """An end-of-epoch callback: ``logger(record)`` adds every number of one metrics.jsonl line
    (``train_objective``, ``val_elbo``, ``kl_weight``, ...) as a scalar at step ``epoch``."""

    def __init__(self, run: RunDirectory) -> None:
        writer_class = summary_writer_class()
        self.directory = make_directory(run.file(SUBDIRECTORY))
        self.writer = writer_class(log_dir=str(self.directory))

    def __call__(self, record: dict[str, Any]) -> None:
        step = int(record["epoch"])
        for name, value in record.items():
            if name != "epoch" and isinstance(value, Real) and not isinstance(value, bool):
                self.writer.add_scalar(name, float(value), global_step=step)
        self.writer.flush()  # visible to a running `tensorboard` at once

    def close(self) -> None:
        self.writer.close()
