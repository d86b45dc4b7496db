"""A user's own data files: read as untrusted input, the kind of data inferred, split.

:func:`read_data_file` reads, by the name's ending:

* ``.npy`` / ``.npz``: a NumPy array ``[N, ...]`` (``.npz``: the array named ``x``, ``images``
  or ``data``, or the archive's only array, and optional labels ``y`` or ``labels``), loaded
  without pickle (:mod:`pyro_vae.data.files_numpy`);
* a directory of PNG/JPEG images, labels from class sub-directories, values ``[N, C, H, W]``
  (:mod:`pyro_vae.data.files_images`);
* ``.csv`` / ``.tsv`` / ``.tab``: a table of numbers, one example per row, header optional,
  optional label column (:mod:`pyro_vae.data.files_table`);
* ``.idx``, ``*-ubyte`` or ``.gz``: an IDX file (:mod:`pyro_vae.data.idx`).

A one-dimensional array ``[N]`` is read as ``N`` examples of one value. Every problem a user can
cause is a :class:`~pyro_vae.errors.DataFormatError` (a missing file: a
:class:`~pyro_vae.errors.DatasetUnavailableError`; a bad option: a
:class:`~pyro_vae.errors.ConfigError`) with a one-line message naming the file, and memory stays
bounded (``max_bytes`` on disk, ``max_values`` numbers) whatever the file claims.

The kind of data (:data:`KINDS`), inferred from the values unless given:

* ``binary``: only 0 and 1 (stored ``uint8``; ``levels`` 2);
* ``levels``: integers 0..255 from images (``levels`` 256), or from an array stored as
  ``uint8`` or whose examples have two or more axes (``levels`` = largest value + 1: 17 for
  scikit-learn's digits); stored ``uint8``;
* ``counts``: other non-negative integers (an integer table or feature matrix, or any value
  above 255); stored ``int64``;
* ``continuous``: anything else; stored ``float32``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DataFormatError, DatasetUnavailableError
from . import files_io
from .files_images import read_image_dir
from .files_io import MAX_BYTES, MAX_TABLE_BYTES, MAX_VALUES, Raw, open_regular
from .files_kinds import KINDS, facts, fit_kind, infer_kind
from .files_numpy import read_npy, read_npz
from .files_table import DELIMITERS, read_table
from .idx import read_idx_stream

__all__ = [
    "KINDS",
    "MAX_BYTES",
    "MAX_TABLE_BYTES",
    "MAX_VALUES",
    "ArrayData",
    "DataSplits",
    "data_format",
    "read_data_file",
    "split",
    "with_kind",
]


@dataclass(frozen=True, eq=False)
class ArrayData:
    """Examples read from a user's file.

    ``values``: ``[N, *shape]`` (``uint8`` binary/levels, ``int64`` counts, ``float32``
    continuous); ``labels``: ``int64`` ``[N]`` or None, codes into ``classes`` when the file
    named its classes; ``levels``: the number of integer levels (binary 2, levels 2..256, else
    None); ``sha256``: of the file's bytes (a directory: of its images' sorted relative names
    and bytes); ``source``: the path as given, absolute; ``format``: ``npy``, ``npz``,
    ``images``, ``table`` or ``idx``; ``columns``: a table's column names (label column left
    out) if it has a header.
    """

    values: torch.Tensor
    labels: torch.Tensor | None
    kind: str
    levels: int | None
    sha256: str
    source: str
    format: str
    classes: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of one example."""
        return tuple(self.values.shape[1:])

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def subset(self, index: np.ndarray | torch.Tensor) -> ArrayData:
        """The examples at ``index`` (same source, hash and kind)."""
        index = torch.as_tensor(index, dtype=torch.long)
        labels = None if self.labels is None else self.labels[index].contiguous()
        return replace(self, values=self.values[index].contiguous(), labels=labels)

    def describe(self) -> dict[str, Any]:
        """What a run records about its data (plain JSON values)."""
        return {
            "source": self.source,
            "format": self.format,
            "sha256": self.sha256,
            "examples": len(self),
            "shape": list(self.shape),
            "kind": self.kind,
            "levels": self.levels,
            "labels": self.labels is not None,
        }


def data_format(path: str | os.PathLike) -> str | None:
    """The format :func:`read_data_file` reads ``path`` as, from its name (a directory:
    ``images``), or None when the name says nothing."""
    path = Path(path)
    name = path.name.lower()
    if os.path.isdir(path):  # never raises (a path in an unreadable directory: False)
        return "images"
    if name.endswith(".npy"):
        return "npy"
    if name.endswith(".npz"):
        return "npz"
    if path.suffix.lower() in DELIMITERS:
        return "table"
    if name.endswith((".idx", "-ubyte", ".gz")):
        return "idx"
    return None


def _read_raw(path: Path, fmt: str, label_column, header, max_bytes, max_values) -> Raw:
    if fmt == "images":
        return read_image_dir(path, max_bytes=max_bytes or MAX_BYTES, max_values=max_values)
    if fmt == "table":
        limits = {"max_bytes": max_bytes or MAX_TABLE_BYTES, "max_values": max_values}
        with open_regular(path) as f:
            return read_table(path, f, label_column=label_column, header=header, **limits)
    with open_regular(path) as f:
        if fmt == "npy":
            return read_npy(path, f, max_bytes=max_bytes or MAX_BYTES, max_values=max_values)
        if fmt == "npz":
            return read_npz(path, f, max_bytes=max_bytes or MAX_BYTES, max_values=max_values)
        size = files_io.file_size(path, f, max_bytes or MAX_BYTES)
        sha = files_io.hash_stream(f, size)
        values = read_idx_stream(path, f, max_values=max_values).numpy()
        files_io.check_bound(path, values.shape, max_values)
        return Raw(values, sha, "idx")


def read_data_file(
    path: str | os.PathLike,
    *,
    label_column: str | int | None = None,
    kind: str | None = None,
    header: bool | None = None,
    max_bytes: int | None = None,
    max_values: int = MAX_VALUES,
) -> ArrayData:
    """Read a user's data file or image directory (see the module's documentation).

    ``label_column`` (tables only): the label column's name or index; ``kind``: one of
    :data:`KINDS`, overriding the inferred kind (refused when the data do not fit it);
    ``header`` (tables only): whether the first row names the columns (default: detected);
    ``max_bytes``: the largest file read (default :data:`MAX_BYTES`, tables
    :data:`MAX_TABLE_BYTES`); ``max_values``: the most numbers read.
    """
    path = Path(os.fspath(path))
    if "\0" in str(path):
        raise ConfigError(f"data file {str(path)!r} holds a NUL character: give a path.")
    fmt = data_format(path)
    if fmt is None:
        if not os.path.exists(path):
            raise DatasetUnavailableError(f"{path}: no such file or directory.")
        raise ConfigError(
            f"{path}: unknown kind of data file; pyro-vae reads .npy, .npz, .csv, .tsv, IDX "
            "files (.idx, -ubyte, .gz) and directories of PNG/JPEG images."
        )
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"kind {kind!r} is not one of: {', '.join(KINDS)}")
    if (label_column is not None or header is not None) and fmt != "table":
        raise ConfigError(f"{path}: a label column and a header belong to CSV/TSV tables only.")
    raw = _read_raw(path, fmt, label_column, header, max_bytes, max_values)
    values = raw.values if raw.values.ndim > 1 else raw.values[:, None]
    return _build(path, raw, values, kind)


def _build(path: Path, raw: Raw, values: np.ndarray, kind: str | None) -> ArrayData:
    found = facts(path, values)
    image_like = raw.format == "images" or values.dtype == np.uint8 or values.ndim > 2
    inferred = infer_kind(found, image_like=image_like)
    kind = kind or inferred
    converted, levels = fit_kind(path, values, found, kind, inferred, image_levels=raw.levels)
    labels = None if raw.labels is None else torch.from_numpy(np.array(raw.labels, np.int64))
    return ArrayData(
        values=torch.from_numpy(converted),
        labels=labels,
        kind=kind,
        levels=levels,
        sha256=raw.sha256,
        source=os.path.abspath(path),
        format=raw.format,
        classes=raw.classes,
        columns=raw.columns,
    )


def with_kind(data: ArrayData, kind: str, levels: int | None = None) -> ArrayData:
    """``data`` as ``kind`` (and, for ``levels``, that many levels if given), refused with a
    message saying what the data hold when they do not fit it."""
    if kind not in KINDS:
        raise ConfigError(f"kind {kind!r} is not one of: {', '.join(KINDS)}")
    values = data.values.numpy()
    found = facts(Path(data.source), values)
    if levels is None and data.format == "images":
        levels = 256
    elif levels is None and data.kind == "levels":
        levels = data.levels
    converted, fitted = fit_kind(
        Path(data.source), values, found, kind, data.kind, image_levels=levels
    )
    return replace(data, values=torch.from_numpy(converted), kind=kind, levels=fitted)


@dataclass(frozen=True, eq=False)
class DataSplits:
    """Train, validation and test examples; ``index`` holds each split's row numbers in the
    file (``test`` None when the test examples came from the user's own test file)."""

    train: ArrayData
    val: ArrayData
    test: ArrayData
    seed: int
    index: dict[str, np.ndarray | None]


def _sizes(n: int, val_fraction: float, test_fraction: float, source: str) -> tuple[int, int]:
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0 <= f < 1:
            raise ConfigError(f"{name} must be a number in [0, 1), got {f!r}")
    if val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"val_fraction + test_fraction must be below 1, got {val_fraction + test_fraction:g}"
        )
    n_val = max(1, round(n * val_fraction)) if val_fraction else 0
    n_test = max(1, round(n * test_fraction)) if test_fraction else 0
    if n - n_val - n_test < 1:
        raise DataFormatError(
            f"{source}: {n} examples are too few to split into training, validation and test "
            "examples."
        )
    return n_val, n_test


def split(
    data: ArrayData,
    *,
    seed: int,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    test: ArrayData | None = None,
) -> DataSplits:
    """A seeded, reproducible split of ``data``.

    The permutation is ``numpy.random.RandomState(seed).permutation(N)`` (a stream NumPy keeps
    stable across versions): its first ``round(N * test_fraction)`` rows are the test split,
    the next ``round(N * val_fraction)`` the validation split, the rest the training split (a
    non-zero fraction gives at least one example). With ``test`` (the user's own test file),
    ``test_fraction`` is ignored, the test examples must have ``data``'s shape, and they are
    read as ``data``'s kind (refused when they do not fit it; class names are matched).
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise ConfigError(f"split seed must be an integer in [0, 2**32), got {seed!r}")
    n = len(data)
    if test is not None:
        test = _matching_test(data, test)
        test_fraction = 0.0
    n_val, n_test = _sizes(n, val_fraction, test_fraction, data.source)
    perm = np.random.RandomState(int(seed)).permutation(n)
    index = {
        "train": perm[n_test + n_val :],
        "val": perm[n_test : n_test + n_val],
        "test": perm[:n_test] if test is None else None,
    }
    return DataSplits(
        train=data.subset(index["train"]),
        val=data.subset(index["val"]),
        test=data.subset(index["test"]) if test is None else test,
        seed=int(seed),
        index=index,
    )


def _matching_test(data: ArrayData, test: ArrayData) -> ArrayData:
    """The user's test examples, checked against and converted to ``data``'s shape and kind."""
    if test.shape != data.shape:
        raise DataFormatError(
            f"{test.source}: test examples have shape {list(test.shape)}, but the training "
            f"data ({data.source}) have {list(data.shape)}."
        )
    test = with_kind(test, data.kind, levels=data.levels)
    if test.levels != data.levels:
        raise DataFormatError(
            f"{test.source}: test values reach {test.levels} levels, but the training data "
            f"({data.source}) have {data.levels}."
        )
    if test.labels is not None and test.classes != data.classes and data.classes is not None:
        if test.classes is None:
            raise DataFormatError(f"{test.source}: labels are numbers, not {data.source}'s names.")
        rank = {c: i for i, c in enumerate(data.classes)}
        unknown = [c for c in test.classes if c not in rank]
        if unknown:
            raise DataFormatError(
                f"{test.source}: class {unknown[0]!r} does not occur in {data.source}."
            )
        lookup = torch.tensor([rank[c] for c in test.classes], dtype=torch.long)
        test = replace(test, labels=lookup[test.labels], classes=data.classes)
    return test
