"""The names of the data sets and pixel schemes, known without importing torch (the command
line's parser reads them, so ``pyro-vae --help`` answers at once)."""

from __future__ import annotations

DATA_DIMS: dict[str, int] = {"digits": 64, "mnist": 784, "fashion-mnist": 784}
"""Pixels per image of each named data set (known without loading it)."""

DATASET_NAMES: tuple[str, ...] = tuple(DATA_DIMS)
"""The named data sets (the keys of :data:`pyro_vae.data.datasets.DATASETS`)."""

PIXEL_SCHEMES = ("dynamic", "static", "grey", "dequantized")
BINARY_SCHEMES = ("dynamic", "static")
