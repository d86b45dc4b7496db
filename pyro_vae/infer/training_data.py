"""What the trainer trains on: a training tensor for each epoch (fresh noise where the pixel
scheme re-samples) and a fixed validation tensor, from an image data set or plain tensors."""

from __future__ import annotations

import torch

from ..data.datasets import ImageDataset
from ..data.pixels import eval_view, pixel_scheme, train_view
from ..data.validate import check_observations
from ..errors import ConfigError, DataFormatError
from ..model.parts import observes


class TrainingData:
    """What the trainer needs of a data set: a training tensor for each epoch (with fresh noise
    where the pixel scheme re-samples) and a fixed validation tensor, both ``[N, D]``."""

    name: str
    num_train: int
    data_dim: int
    image_shape: tuple[int, ...] | None
    val: torch.Tensor

    def epoch(self) -> torch.Tensor:
        raise NotImplementedError


class ImageData(TrainingData):
    """An :class:`ImageDataset` seen through a pixel scheme, held on ``device``."""

    def __init__(self, dataset: ImageDataset, pixels: str, device: torch.device) -> None:
        self.name, self.levels, self.pixels = dataset.name, dataset.levels, pixels
        self.train = type(dataset.train)(
            dataset.train.images.to(device), dataset.train.labels.to(device)
        )
        self.num_train = len(dataset.train)
        self.data_dim = dataset.data_dim
        self.image_shape = dataset.image_shape if dataset.is_image else None
        self.val = eval_view(dataset.val, dataset.levels, pixels, "val").to(device)
        # a scheme without fresh noise gives the same tensor every epoch: compute it once
        self._fixed = None if pixel_scheme(pixels).fresh_noise else self._view()

    def _view(self) -> torch.Tensor:
        return train_view(self.train, self.levels, self.pixels)

    def epoch(self) -> torch.Tensor:
        return self._fixed if self._fixed is not None else self._view()


class TensorData(TrainingData):
    """Plain continuous data, e.g. 2-D toy points: the same training tensor every epoch."""

    def __init__(
        self, train: torch.Tensor, val: torch.Tensor, name: str = "tensor data", device=None
    ) -> None:
        check_observations(train, f"{name} (training)")
        check_observations(val, f"{name} (validation)", data_dim=train.shape[1])
        self.name = name
        self.train_tensor, self.val = train.to(device), val.to(device)
        self.num_train, self.data_dim = train.shape
        self.image_shape = None

    def epoch(self) -> torch.Tensor:
        return self.train_tensor

    def to(self, device: torch.device) -> TensorData:
        self.train_tensor, self.val = self.train_tensor.to(device), self.val.to(device)
        return self


def check_tensor_data(data: TensorData, likelihood: object) -> None:
    """Plain tensors hold what the likelihood scores: 0 and 1 for a binary one, non-negative
    integers for a count one (a ``DataFormatError`` naming the first other value and where)."""
    kind = observes(likelihood)
    for x, which in ((data.train_tensor, "training"), (data.val, "validation")):
        name = f"{data.name} ({which})"
        if kind == "binary":
            check_observations(x, name, binary=True)
        off = (x < 0) | (x != x.round()) if kind == "counts" else None
        if off is not None and off.any():
            row, col = off.nonzero()[0].tolist()
            raise DataFormatError(
                f"{name}: the likelihood {type(likelihood).__qualname__} scores counts, but "
                f"{int(off.sum())} value(s) are not non-negative integers (e.g. "
                f"{x[row, col].item():g} at row {row}, column {col}); use a likelihood for "
                "continuous data (gaussian, gaussian-learned)."
            )


def check_batch_size(batch_size: int, data: ImageDataset | TrainingData) -> None:
    """A batch cannot be larger than the training set."""
    n_train = data.num_train if isinstance(data, TrainingData) else len(data.train)
    if batch_size > n_train:
        raise ConfigError(
            f"--batch-size {batch_size} is larger than the {n_train} training "
            f"examples of {data.name!r}; use at most {n_train}."
        )
