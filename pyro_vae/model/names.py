"""The names of the model's built-in parts and activations: declared in
:mod:`pyro_vae.config.names`, re-exported here for code that imports them from their former
home."""

from __future__ import annotations

from ..config.names import ACTIVATION_NAMES, BUILTIN_PARTS, PART_KINDS

__all__ = ["ACTIVATION_NAMES", "BUILTIN_PARTS", "PART_KINDS"]
