"""Every setting of a run, declared once, without importing torch, Pyro or matplotlib.

A setting is a field of a section dataclass (:class:`DataConfig`, :class:`ModelConfig`,
:class:`TrainConfig`, :class:`DistributedConfig`) declared with :func:`setting`: its default,
its help, its :mod:`constraint <.constraints>` and its command-line spelling. The options of
``pyro-vae run``/``train`` (:mod:`pyro_vae.app.options`) and the per-field checks
(:func:`field_problems`) are generated from these declarations; :data:`PRESETS` live beside
them. This is the package's lowest layer: it imports only the shared helpers.
"""

from __future__ import annotations

from .constraints import (
    Boolean,
    Constraint,
    Device,
    Integer,
    JSONObject,
    ListOf,
    OneOf,
    PartName,
    PositiveNumber,
    Text,
    parse_device,
)
from .declare import Declared, Setting, Shorthand, declared, field_problems, setting
from .presets import PRESETS, preset_sections
from .sections import SHORTHANDS, DataConfig, DistributedConfig, ModelConfig
from .train import DEFAULT_EPOCHS, MAX_SEED, TrainConfig, jit_where_valid, kl_weight_problems

__all__ = [
    "DEFAULT_EPOCHS",
    "MAX_SEED",
    "PRESETS",
    "SHORTHANDS",
    "Boolean",
    "Constraint",
    "DataConfig",
    "Declared",
    "Device",
    "DistributedConfig",
    "Integer",
    "JSONObject",
    "ListOf",
    "ModelConfig",
    "OneOf",
    "PartName",
    "PositiveNumber",
    "Setting",
    "Shorthand",
    "Text",
    "TrainConfig",
    "declared",
    "field_problems",
    "jit_where_valid",
    "kl_weight_problems",
    "parse_device",
    "preset_sections",
    "setting",
]
