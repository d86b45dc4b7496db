"""How to train, as plain data: declared in :mod:`pyro_vae.config` (its lowest layer, known
without importing torch) and re-exported here for code that imports it from its former home."""

from __future__ import annotations

from ..config.constraints import DEVICE_TYPES, MAX_DEVICE_INDEX, parse_device
from ..config.names import ELBO_NAMES, LR_SCHEDULES, SUPPORTS_JIT, SUPPORTS_KL_WEIGHT
from ..config.train import (
    DEFAULT_EPOCHS,
    FLOAT32_TINY,
    MAX_SEED,
    TrainConfig,
    jit_where_valid,
    kl_weight_problems,
)

__all__ = [
    "DEFAULT_EPOCHS",
    "DEVICE_TYPES",
    "ELBO_NAMES",
    "FLOAT32_TINY",
    "LR_SCHEDULES",
    "MAX_DEVICE_INDEX",
    "MAX_SEED",
    "SUPPORTS_JIT",
    "SUPPORTS_KL_WEIGHT",
    "TrainConfig",
    "jit_where_valid",
    "kl_weight_problems",
    "parse_device",
]
