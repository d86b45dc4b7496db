"""A user's data file as a run's data set (``--dataset PATH``): read (:mod:`.files`), split
with a recorded seed, described for the run's ``config.json``, and, when a run is read back,
checked against that record.

The record (the data section of ``config.json``): ``dataset`` (the file's absolute path),
``data_kind``, ``data_sha256``, ``data_shape`` (one example's), ``split_seed``, ``label_column``
and, with ``--test-file``, ``test_file`` and ``test_sha256``. A run whose file no longer has the
recorded SHA-256 is refused, naming the file and what changed. The recorded path may be
anyone's (a foreign ``config.json``): it is only read, never written or created."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, DataFormatError
from .datasets import ImageDataset, Split, expand_path
from .files import ArrayData, read_data_file, split

MAX_CLASSES = 100
"""Labels with more distinct values than this are kept but not named (nor coloured) in
figures."""


def label_column_value(text: str | None) -> str | int | None:
    """``--label-column``: a column number (``3``, ``-1``) or a column name."""
    if text is None:
        return None
    digits = text[1:] if text.startswith("-") else text
    return int(text) if digits.isascii() and digits.isdigit() else text


def _read(path: str | os.PathLike, label_column: str | None, kind: str | None) -> ArrayData:
    where = expand_path(path, "data file")
    return read_data_file(where, label_column=label_column_value(label_column), kind=kind)


def _as_split(data: ArrayData) -> Split:
    values = data.values
    if data.format == "images" and values.dim() == 4 and values.shape[1] == 1:
        values = values[:, 0]  # grey images as [N, H, W], like the named data sets
    labels = data.labels if data.labels is not None else torch.zeros(len(data), dtype=torch.long)
    return Split(values.contiguous(), labels.long().contiguous())


def _classes(data: ArrayData) -> tuple[str, ...] | None:
    if data.labels is None or len(data.labels) == 0:
        return None
    if data.classes is not None:
        return tuple(data.classes)
    low, high = int(data.labels.min()), int(data.labels.max())
    if low < 0 or high >= MAX_CLASSES:
        return None
    return tuple(str(c) for c in range(high + 1))


def load_file_dataset(
    path: str | os.PathLike,
    *,
    label_column: str | None = None,
    kind: str | None = None,
    test_file: str | os.PathLike | None = None,
    seed: int = 0,
) -> ImageDataset:
    """The data file (or image folder) ``path`` in seeded train / validation / test splits
    (10% / 20% of the examples for validation / test; with ``test_file``, its examples are the
    test split and 10% of ``path``'s the validation split). ``kind``: what the values are
    (default: inferred). Its :attr:`~.datasets.ImageDataset.record` is what a run records."""
    data = _read(path, label_column, kind)
    test = _read(test_file, label_column, None) if test_file is not None else None
    splits = split(data, seed=seed, test=test)
    record: dict[str, Any] = {
        "dataset": data.source,
        "label_column": label_column,
        "data_kind": data.kind,
        "data_sha256": data.sha256,
        "data_shape": list(data.shape),
        "split_seed": splits.seed,
        "test_file": None if test is None else test.source,
        "test_sha256": None if test is None else test.sha256,
    }
    return ImageDataset(
        name=Path(data.source).name or data.source,
        train=_as_split(splits.train),
        val=_as_split(splits.val),
        test=_as_split(splits.test),
        levels=data.levels,
        source=data.source,
        kind=data.kind,
        classes=_classes(data),
        columns=data.columns,
        record=record,
    )


def _sha(text: object) -> str:
    return f"{text}"[:16] + "..."


def reload_file_dataset(
    recorded: dict[str, Any], run: str, data_dir: str | os.PathLike | None = None
) -> ImageDataset:
    """The data set of an existing run whose configuration recorded a data file
    (``recorded``: its data section), read from the recorded path or, with ``data_dir``, from
    the file of the same name in ``data_dir``; refused, naming the file and what changed, when
    its SHA-256 or shape is not the recorded one. Nothing is written anywhere."""
    path, test_file = recorded["dataset"], recorded.get("test_file")
    if data_dir is not None:
        where = expand_path(data_dir, "--data-dir")
        path = str(where / Path(path).name)
        test_file = None if test_file is None else str(where / Path(test_file).name)
    dataset = load_file_dataset(
        path,
        label_column=recorded.get("label_column"),
        kind=recorded.get("data_kind"),
        test_file=test_file,
        seed=recorded.get("split_seed", 0),
    )
    got = dataset.record or {}
    checks = [(path, "data file", "data_sha256")]
    if test_file is not None:
        checks.append((test_file, "test file", "test_sha256"))
    for where, what, key in checks:
        if got[key] == recorded.get(key):
            continue
        shape = ""
        if key == "data_sha256" and got["data_shape"] != recorded.get("data_shape"):
            shape = f"; its examples are of shape {got['data_shape']}, recorded " + str(
                recorded.get("data_shape")
            )
        raise DataFormatError(
            f"{run}: the {what} {where} changed since the run was trained: its SHA-256 is "
            f"{_sha(got[key])}, the run recorded {_sha(recorded.get(key))}{shape}; restore the "
            "file the run was trained on, or give --data-dir DIR holding it"
        )
    return dataset


def check_file_options(dataset: str, label_column, kind, test_file) -> None:
    """``--label-column``, ``--data-kind`` and ``--test-file`` belong to a data file."""
    given = [
        flag
        for flag, value in (
            ("--label-column", label_column),
            ("--data-kind", kind),
            ("--test-file", test_file),
        )
        if value is not None
    ]
    if given:
        raise ConfigError(
            f"{given[0]} belongs to a data file of yours (--dataset PATH), not to the named "
            f"data set {dataset!r}"
        )
