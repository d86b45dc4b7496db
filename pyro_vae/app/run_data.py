"""Where an existing run's data come from: the data set its ``config.json`` names, found and
downloaded only where the user says (a new run's: :func:`pyro_vae.jobs.prepare.load_data`)."""

from __future__ import annotations

from pathlib import Path

from ..data.datasets import ImageDataset, load_dataset
from .config import RunConfig


def load_run_data(
    cfg: RunConfig, data_dir: str | Path | None = None, download: bool | None = None
) -> ImageDataset:
    """The data set of an existing run (evaluate, figures, report, resume), whose
    ``config.json`` may be anyone's: it chooses the data set, but not where anything is
    written. A download goes to ``data_dir`` (the user's ``--data-dir``) or the user's cache
    (``$PYRO_VAE_DATA``, else ``~/.cache/pyro-vae``), never into the configuration's
    ``data_dir``, which is only read from, and only when it is an existing directory.
    ``download``: the user's permission (``None``: the run's own setting, for a resume,
    which takes no data options)."""
    allowed = cfg.data.download if download is None else download
    named = [cfg.data.data_dir] if cfg.data.data_dir else []
    return load_dataset(cfg.data.dataset, data_dir, download=allowed, search_dirs=named)
