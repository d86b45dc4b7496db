"""Every setting of a run, declared once, without importing torch, Pyro or matplotlib.

A setting is a field of a section dataclass (:class:`DataConfig`, :class:`ModelConfig`,
:class:`TrainConfig`, :class:`DistributedConfig`) declared with :func:`setting`: its default,
its help, its :mod:`constraint <.constraints>` and its command-line spelling. The options of
``pyro-vae run``/``train`` (:mod:`pyro_vae.app.options`) and the per-field checks
(:func:`field_problems`) are generated from these declarations; :data:`PRESETS` live beside
them. This is the package's lowest layer: it imports only the shared helpers.
"""

from __future__ import annotations

from .capabilities import (
    DensityUse,
    combination_problems,
    guide_density_problem,
    guide_has_density,
    objective_problems,
    pixels_problem,
    prior_uses_guide,
)
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
from .objectives import OBJECTIVES, Objective, jit_default, objective
from .pixels import SCHEMES, PixelScheme, pixel_scheme
from .presets import PRESETS, preset_sections
from .sections import SHORTHANDS, DataConfig, DistributedConfig, ModelConfig
from .train import DEFAULT_EPOCHS, MAX_SEED, TrainConfig, jit_where_valid, kl_weight_problems

__all__ = [
    "DEFAULT_EPOCHS",
    "MAX_SEED",
    "OBJECTIVES",
    "PRESETS",
    "SCHEMES",
    "SHORTHANDS",
    "Boolean",
    "Constraint",
    "DataConfig",
    "Declared",
    "DensityUse",
    "Device",
    "DistributedConfig",
    "Integer",
    "JSONObject",
    "ListOf",
    "ModelConfig",
    "Objective",
    "OneOf",
    "PartName",
    "PixelScheme",
    "PositiveNumber",
    "Setting",
    "Shorthand",
    "Text",
    "TrainConfig",
    "combination_problems",
    "declared",
    "field_problems",
    "guide_density_problem",
    "guide_has_density",
    "jit_default",
    "jit_where_valid",
    "kl_weight_problems",
    "objective",
    "objective_problems",
    "parse_device",
    "pixel_scheme",
    "pixels_problem",
    "preset_sections",
    "prior_uses_guide",
    "setting",
]
