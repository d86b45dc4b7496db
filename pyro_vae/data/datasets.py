"""Named image data sets with fixed, seeded train / validation / test splits.

``load_dataset(name)`` returns an :class:`ImageDataset` of integer grey levels (uint8). How those
levels become what a likelihood observes (binarized, dequantized, ...) is :mod:`pyro_vae.pixels`'
job.

Data sets and splits (the split permutation uses ``numpy.random.RandomState(SPLIT_SEED)``, whose
stream NumPy keeps stable across versions, so the splits never change):

* ``digits``: scikit-learn's 8x8 handwritten digits (1,797 images, 17 grey levels), shipped
  inside scikit-learn, so always available offline. 1,197 train / 300 validation / 300 test.
* ``mnist`` and ``fashion-mnist``: 28x28, 256 grey levels. The official 10,000 test images are
  the test split; the 60,000 training images are split into 50,000 train and 10,000 validation.
  Files are looked for in ``data_dir`` (flat, or torchvision's ``<Name>/raw`` layout, ``.gz`` or
  not), then in ``search_dirs`` (read only), then in system locations (Debian's
  ``dataset-fashion-mnist`` package), then in the cache directory; if absent and
  ``download=True``, torchvision downloads them into ``data_dir`` or, without one, the cache.
  Nothing is ever created or downloaded in a directory of ``search_dirs``: that is how a run's
  own ``data_dir`` (chosen by whoever wrote its ``config.json``) is used.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config.datasets import DATA_SETS, DataSet
from ..config.names import DATA_DIMS  # noqa: F401  (re-exported: known without loading torch)
from ..errors import DataFormatError, DatasetUnavailableError
from .idx import read_idx

CLASS_NAMES = {name: list(d.classes) for name, d in DATA_SETS.items()}
"""Names of the classes of each data set (labels are only used for plots)."""

SPLIT_SEED = 0
"""Seed of the fixed permutation that defines every data set's splits."""

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def expand_path(text: str | os.PathLike, what: str) -> Path:
    """``text`` as a path with a leading ``~`` or ``~user`` expanded; a user without a home
    directory, or a NUL character, is a :class:`DatasetUnavailableError` naming ``what``."""
    text = os.fspath(text)
    if "\0" in str(text):
        raise DatasetUnavailableError(f"{what} {text!r} holds a NUL character: give a path.")
    try:
        path = Path(text).expanduser()
    except (RuntimeError, KeyError):  # no home directory to be found
        path = Path(text)
    if str(path).startswith("~"):
        raise DatasetUnavailableError(
            f"{what} {text}: no home directory for {str(text)[1:].split('/', 1)[0] or 'you'} "
            "(no such user?). Give a directory that exists."
        )
    return path


def default_data_dir() -> Path:
    """Where downloads go: ``$PYRO_VAE_DATA`` (``~`` expanded) or ``~/.cache/pyro-vae``."""
    env = os.environ.get("PYRO_VAE_DATA")
    if env:
        return expand_path(env, "PYRO_VAE_DATA")
    return expand_path("~/.cache/pyro-vae", "the cache directory (set PYRO_VAE_DATA)")


@dataclass(frozen=True)
class Split:
    """Examples (``[N, *shape]``: uint8 grey levels ``[N, H, W]`` for the named data sets) and
    integer labels (``[N]``; zeros for unlabelled data) of one split."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass(frozen=True)
class ImageDataset:
    """A data set in three fixed splits: the named image sets, or a user's data file
    (:mod:`pyro_vae.data.file_dataset`).

    ``kind`` is what the values are (:data:`~pyro_vae.config.datasets.DATA_KINDS`): ``binary``
    and ``levels`` are stored uint8 with ``levels`` integer values ``0 .. levels - 1`` (the
    pixel schemes of :mod:`pyro_vae.data.pixels` turn them into observations); ``counts``
    (int64) and ``continuous`` (float32) are observed as they are (``levels`` None). An example
    may have any shape (``[H, W]`` grey images, ``[C, H, W]`` colour ones, ``[F]`` table rows);
    the models see it flattened to ``data_dim`` values. ``classes``: the class names in label
    order (None: no labels); ``columns``: a table's column names; ``record``: what a run's
    configuration records of a data file (its path, SHA-256, shape, kind and split seed).
    """

    name: str
    train: Split
    val: Split
    test: Split
    levels: int | None
    source: str
    kind: str = "levels"
    classes: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None
    record: dict[str, Any] | None = None

    @property
    def image_shape(self) -> tuple[int, ...]:
        """The shape of one example."""
        return tuple(self.train.images.shape[1:])

    @property
    def data_dim(self) -> int:
        return math.prod(self.image_shape)

    @property
    def is_image(self) -> bool:
        """Whether its examples are grey (``[H, W]``) or colour (``[C, H, W]``, C from 1 to 4:
        grey or RGB, with alpha or not) images of integer levels, drawn as image grids (else as
        per-feature plots)."""
        shape = self.image_shape
        colour = len(shape) == 3 and shape[0] in (1, 2, 3, 4)  # grey or RGB, alpha or not
        return self.kind in ("binary", "levels") and (len(shape) == 2 or colour)

    def split(self, name: str) -> Split:
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split {name!r}; expected 'train', 'val' or 'test'")
        return getattr(self, name)


def _permutation(n: int) -> torch.Tensor:
    return torch.from_numpy(np.random.RandomState(SPLIT_SEED).permutation(n)).long()


def _take(images: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> Split:
    return Split(images[index].contiguous(), labels[index].long().contiguous())


# --------------------------------------------------------------------------- digits


def _load_digits(data_dir: str | os.PathLike | None, download: bool) -> ImageDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.uint8))  # values 0..16
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    perm = _permutation(len(images))
    n_test = n_val = 300
    return ImageDataset(
        name="digits",
        test=_take(images, labels, perm[:n_test]),
        val=_take(images, labels, perm[n_test : n_test + n_val]),
        train=_take(images, labels, perm[n_test + n_val :]),
        levels=17,
        source="scikit-learn (sklearn.datasets.load_digits)",
        classes=tuple(CLASS_NAMES["digits"]),
    )


# --------------------------------------------------------------------------- IDX data sets


SYSTEM_DIRS: dict[str, tuple[str, ...]] = {n: d.system_dirs for n, d in DATA_SETS.items()}
"""System-wide directories searched (after ``data_dir``) for each IDX data set."""


@dataclass(frozen=True)
class _IdxSource:
    name: str
    torchvision_name: str
    install_hint: str = ""

    @classmethod
    def of(cls, declared: DataSet) -> _IdxSource:
        return cls(declared.name, declared.torchvision, declared.install_hint)

    def layouts(self, directory: Path) -> list[Path]:
        return [directory, directory / self.torchvision_name / "raw", directory / self.name]

    def candidate_dirs(self, data_dir: Path | None, search_dirs: Sequence[Path] = ()) -> list[Path]:
        dirs: list[Path] = []
        if data_dir is not None:
            dirs += self.layouts(data_dir)
        for directory in search_dirs:
            dirs += self.layouts(directory)
        dirs += [Path(d) for d in SYSTEM_DIRS.get(self.name, ())]
        cache = default_data_dir()
        dirs += [cache / self.torchvision_name / "raw", cache / self.name]
        return dirs


def _find_file(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _find_idx_files(
    source: _IdxSource, data_dir: Path | None, search_dirs: Sequence[Path] = ()
) -> dict[str, Path] | None:
    for directory in source.candidate_dirs(data_dir, search_dirs):
        found = {key: _find_file(directory, stem) for key, stem in IDX_FILES.items()}
        if all(found.values()):
            return found  # type: ignore[return-value]
        present = [k for k, v in found.items() if v is not None]
        if present and data_dir is not None and directory.is_relative_to(data_dir):
            missing = [IDX_FILES[k] for k, v in found.items() if v is None]
            raise DatasetUnavailableError(
                f"{directory} holds part of the {source.name} files but lacks "
                f"{', '.join(missing)} (each may be .gz or not). Put all four IDX files there."
            )
    return None


def _how_to_supply(source: _IdxSource, data_dir: Path | None, download: bool = True) -> str:
    names = ", ".join(f"{stem}[.gz]" for stem in IDX_FILES.values())
    where = data_dir if data_dir is not None else "DIR"
    why = "could not be downloaded" if download else "--no-download forbids downloading it"
    text = (
        f"Data set {source.name!r} is not available offline and {why}.\n"
        f"Supply its four IDX files ({names}) in one directory and pass --data-dir {where}\n"
        f"(a flat directory, or torchvision's layout {where}/{source.torchvision_name}/raw, "
        f"both work), or run once where the network is reachable to let torchvision download "
        f"them into {default_data_dir()}."
    )
    if source.install_hint:
        text += "\n" + source.install_hint
    return text


def _download(source: _IdxSource, root: Path) -> None:
    import torchvision.datasets as tvd

    cls = getattr(tvd, source.torchvision_name)
    root.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        cls(root=str(root), train=train, download=True)


def _read_pair(
    images_path: Path, labels_path: Path, num_classes: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of one split, checked: labels from 0 to ``num_classes - 1``."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dim() != 3 or images.dtype != torch.uint8:
        raise DataFormatError(
            f"{images_path}: expected uint8 images of shape [N, H, W], got {images.dtype} "
            f"{tuple(images.shape)}."
        )
    if labels.dim() != 1:
        raise DataFormatError(f"{labels_path}: expected a vector of labels, got {labels.shape}.")
    if images.shape[0] != labels.shape[0]:
        raise DataFormatError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
            f"{labels.shape[0]} labels: the files do not belong together."
        )
    if images.shape[0] == 0:
        raise DataFormatError(f"{images_path}: holds no images.")
    if images.shape[1] == 0 or images.shape[2] == 0:
        raise DataFormatError(
            f"{images_path}: its images are {images.shape[1]}x{images.shape[2]} pixels; an "
            "image needs at least one pixel."
        )
    _check_labels(labels, labels_path, num_classes)
    return images, labels.long()


def _check_labels(labels: torch.Tensor, path: Path, num_classes: int) -> None:
    """Refuse labels outside 0..``num_classes - 1`` (a class the data set does not have)."""
    if labels.is_floating_point() or labels.is_complex():
        raise DataFormatError(f"{path}: labels must be integers, got {labels.dtype}.")
    if len(labels) and not (0 <= int(labels.min()) and int(labels.max()) < num_classes):
        raise DataFormatError(
            f"{path}: labels must be 0..{num_classes - 1} (the data set's {num_classes} "
            f"classes), got {int(labels.min())}..{int(labels.max())}."
        )


def _load_idx_dataset(
    source: _IdxSource,
    data_dir: str | os.PathLike | None,
    download: bool,
    search_dirs: Sequence[str | os.PathLike] = (),
) -> ImageDataset:
    data_dir = expand_path(data_dir, "--data-dir") if data_dir is not None else None
    searched = [Path(d) for d in search_dirs]
    if data_dir is not None and not data_dir.is_dir():
        what = "is not a directory" if data_dir.exists() else "is missing: no such directory"
        raise DatasetUnavailableError(
            f"--data-dir {data_dir} {what}. Give the directory that holds the four "
            f"{source.name} IDX files ({', '.join(IDX_FILES.values())}, each .gz or not)."
        )
    files = _find_idx_files(source, data_dir, searched)
    if files is None and download:
        root = data_dir if data_dir is not None else default_data_dir()
        try:
            _download(source, root)
        except Exception as exc:  # noqa: BLE001 - any download failure means "not available"
            raise DatasetUnavailableError(
                _how_to_supply(source, data_dir) + f"\n(download failed: {exc})"
            ) from exc
        files = _find_idx_files(source, data_dir if data_dir is not None else root, searched)
    if files is None:
        raise DatasetUnavailableError(_how_to_supply(source, data_dir, download))

    classes = len(CLASS_NAMES[source.name])
    train_images, train_labels = _read_pair(files["train_images"], files["train_labels"], classes)
    test_images, test_labels = _read_pair(files["test_images"], files["test_labels"], classes)
    if train_images.shape[1:] != test_images.shape[1:]:
        raise DataFormatError(
            f"train images are {tuple(train_images.shape[1:])} but test images are "
            f"{tuple(test_images.shape[1:])}: the files do not belong together."
        )
    if len(train_images) < 2:
        raise DataFormatError(f"{files['train_images']}: needs at least 2 training images.")
    perm = _permutation(len(train_images))
    n_val = max(1, round(len(train_images) / 6))  # 10,000 of 60,000
    return ImageDataset(
        name=source.name,
        train=_take(train_images, train_labels, perm[n_val:]),
        val=_take(train_images, train_labels, perm[:n_val]),
        test=Split(test_images.contiguous(), test_labels),
        levels=256,
        source=str(files["train_images"].parent),
        classes=tuple(CLASS_NAMES[source.name]),
    )


_IDX_SOURCES = {n: _IdxSource.of(d) for n, d in DATA_SETS.items() if d.torchvision}
"""The data sets in the MNIST format (:attr:`~pyro_vae.config.datasets.DataSet.torchvision`)."""
MNIST = _IDX_SOURCES["mnist"]
FASHION_MNIST = _IDX_SOURCES["fashion-mnist"]

Loader = Callable[[str | os.PathLike | None, bool], ImageDataset]
OWN_LOADERS: dict[str, Loader] = {"digits": _load_digits}
"""The loaders of the data sets in a format of their own (not IDX files)."""
DATASETS: dict[str, Loader] = {
    name: OWN_LOADERS[name]
    if name in OWN_LOADERS
    else partial(_load_idx_dataset, _IDX_SOURCES[name])
    for name in DATA_SETS
}
"""Registry of named data sets: name -> loader(data_dir, download), one for each declaration
of :data:`pyro_vae.config.datasets.DATA_SETS`."""


def _existing_dirs(paths: Sequence[str | os.PathLike]) -> list[Path]:
    found = []
    for path in paths:
        try:
            directory = Path(path).expanduser()
        except RuntimeError:  # ~nosuchuser
            continue
        if directory.is_dir():
            found.append(directory)
    return found


def load_dataset(
    name: str = "digits",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    *,
    search_dirs: Sequence[str | os.PathLike] = (),
) -> ImageDataset:
    """Load a named data set in its fixed train / validation / test splits. ``search_dirs``:
    further directories to read its files from (after ``data_dir``), never written to; one
    that is not an existing directory is skipped."""
    if name not in DATASETS:
        raise DatasetUnavailableError(
            f"unknown data set {name!r}; choose one of {', '.join(sorted(DATASETS))}."
        )
    searched = _existing_dirs(search_dirs)
    if searched and name in _IDX_SOURCES:
        return _load_idx_dataset(_IDX_SOURCES[name], data_dir, download, searched)
    return DATASETS[name](data_dir, download)


def locate_dataset(name: str, data_dir: str | os.PathLike | None = None) -> str | None:
    """Where ``name`` would be loaded from without downloading, or ``None`` if it is absent."""
    if name == "digits":
        return "scikit-learn (always available)"
    source = _IDX_SOURCES[name]
    try:
        where = expand_path(data_dir, "--data-dir") if data_dir is not None else None
        files = _find_idx_files(source, where)
    except DatasetUnavailableError as exc:
        return f"incomplete: {exc}"
    return str(files["train_images"].parent) if files else None
