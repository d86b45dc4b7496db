"""The names of the data sets and pixel schemes: declared in :mod:`pyro_vae.config.names`,
re-exported here for code that imports them from their former home."""

from __future__ import annotations

from ..config.names import BINARY_SCHEMES, DATA_DIMS, DATASET_NAMES, PIXEL_SCHEMES

__all__ = ["BINARY_SCHEMES", "DATASET_NAMES", "DATA_DIMS", "PIXEL_SCHEMES"]
