"""Named sets of settings (``--preset NAME``), declared once: the command line reads them as
option values that stand in for the options not given, the experiments as configuration
sections (:func:`preset_sections`)."""

from __future__ import annotations

from typing import Any

from .declare import declared
from .sections import DataConfig, ModelConfig
from .train import TrainConfig

PRESETS: dict[str, dict[str, Any]] = {
    "quality": {
        "pixels": "grey",
        "prior": "vamp",
        "activation": "gated",
        "elbo": "iwae",
        "particles": 5,
        "lr": 3e-3,
        "lr_schedule": "cosine",
    },
}
"""``--preset NAME``: values of configuration fields (by name) that stand in for the options not
given. ``quality`` is the recipe the README recommends for the best log p(x) per epoch (the
ablation in ``experiments/recipes.py`` shows what each of its levers buys and costs; gated
layers joined it in 0.4)."""

SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def preset_sections(name: str) -> dict[str, dict[str, Any]]:
    """The preset ``name`` split by configuration section: ``{"data": {...}, "model": {...},
    "train": {...}}`` (each holding the preset's fields of that section)."""
    preset = PRESETS[name]
    found: dict[str, dict[str, Any]] = {}
    for section, cls in SECTIONS.items():
        names = {d.name for d in declared(cls)}
        found[section] = {k: v for k, v in preset.items() if k in names}
    left = set(preset) - {k for values in found.values() for k in values}
    if left:
        raise KeyError(f"preset {name!r} sets no field named {', '.join(sorted(left))}")
    return found
