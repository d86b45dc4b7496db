"""Where a run's data come from: a new run's from the command line (:func:`load_new_data`), an
existing run's from its ``config.json`` (:func:`load_run_data`), found and downloaded only
where the user says; a data file of the user's (``--dataset PATH``) recorded in the
configuration (:func:`data_record`) and checked against that record when read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config.datasets import is_file_source
from ..data.datasets import ImageDataset, load_dataset
from ..data.file_dataset import check_file_options, load_file_dataset, reload_file_dataset
from .config import DataConfig, RunConfig


def load_new_data(
    dataset: str,
    data_dir: str | None = None,
    download: bool = True,
    *,
    label_column: str | None = None,
    kind: str | None = None,
    test_file: str | None = None,
    split_seed: int = 0,
) -> ImageDataset:
    """The data set of a new run, from its settings (the user's command line): a named data
    set, or the data file ``dataset`` names, split with ``split_seed`` (``label_column``,
    ``kind`` and ``test_file`` belong to a data file only)."""
    if is_file_source(dataset):
        return load_file_dataset(
            dataset, label_column=label_column, kind=kind, test_file=test_file, seed=split_seed
        )
    check_file_options(dataset, label_column, kind, test_file)
    return load_dataset(dataset, data_dir, download=download)


def data_record(dataset: ImageDataset) -> dict[str, Any]:
    """What a run's data section records of a data file (its absolute path, SHA-256, shape,
    kind, split seed, test file); nothing for a named data set."""
    return dict(dataset.record or {})


def load_run_data(
    cfg: RunConfig,
    data_dir: str | Path | None = None,
    download: bool | None = None,
    run: str | Path = "the run",
) -> ImageDataset:
    """The data set of an existing run (evaluate, figures, report, resume), whose
    ``config.json`` may be anyone's: it chooses the data set, but not where anything is
    written. A download goes to ``data_dir`` (the user's ``--data-dir``) or the user's cache
    (``$PYRO_VAE_DATA``, else ``~/.cache/pyro-vae``), never into the configuration's
    ``data_dir``, which is only read from, and only when it is an existing directory.
    ``download``: the user's permission (``None``: the run's own setting, for a resume,
    which takes no data options). A data file is read from its recorded path (with
    ``data_dir``: the file of that name in ``data_dir``), only read, and refused when it is not
    the file the run recorded (:func:`~pyro_vae.data.file_dataset.reload_file_dataset`)."""
    if is_file_source(cfg.data.dataset):
        return reload_file_dataset(_record(cfg), str(run), data_dir)
    allowed = cfg.data.download if download is None else download
    named = [cfg.data.data_dir] if cfg.data.data_dir else []
    return load_dataset(cfg.data.dataset, data_dir, download=allowed, search_dirs=named)


def _record(cfg: RunConfig) -> dict:
    d = cfg.data
    keys = ("dataset", "label_column", "data_kind", "data_sha256", "data_shape", "split_seed")
    return {k: getattr(d, k) for k in (*keys, "test_file", "test_sha256")}


def data_words(data: DataConfig) -> str:
    """How the report describes a run's data beside its name: the pixel scheme of a named data
    set; a data file's kind, example shape and SHA-256 (and its test file)."""
    if data.data_sha256 is None:
        return f"{data.pixels} pixels"
    shape = "x".join(str(n) for n in data.data_shape) or "1"
    test = f", test examples from {data.test_file}" if data.test_file else ""
    return (
        f"{data.data_kind} data, {shape} values per example, SHA-256 {data.data_sha256[:12]}..., "
        f"split seed {data.split_seed}{test}; {data.pixels} pixels"
    )


def example_word(data: DataConfig) -> str:
    """What the printouts, the report and ``compare`` call one of a run's examples: ``image``
    for images (a named data set, a data file of images), ``example`` for anything else (a
    table's rows, a count matrix's): "nats per example", "30 test examples"."""
    return "example" if is_table(data) else "image"


def is_table(data: DataConfig) -> bool:
    """Whether a run's data are a data file whose examples are not images (the test of
    :attr:`~pyro_vae.data.datasets.ImageDataset.is_image`, from the configuration's record)."""
    if data.data_sha256 is None:
        return False
    shape = list(data.data_shape)
    image = len(shape) == 2 or (len(shape) == 3 and shape[0] in (1, 2, 3, 4))
    return not (data.data_kind in ("binary", "levels") and image)
