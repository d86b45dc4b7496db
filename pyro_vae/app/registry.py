"""The old home of part resolution and model building, kept so that existing imports work;
the code lives in :mod:`.part_import` (names to classes, the trust rule), :mod:`.vae_build`
(classes to parts to a VAE, resolving a configuration, loading weights), :mod:`.contract` (the
part contract checked on a test batch) and :mod:`.describe` (what a model is, in words)."""

from __future__ import annotations

from ..config.names import ENTRY_POINT_GROUP, entry_points, part_names
from .contract import check_contract, check_vae
from .describe import (
    count_parameters,
    describe_parts,
    generative_parameters,
    model_summary,
    part_label,
)
from .part_import import BUILTINS, command_line_modules, import_path, is_import_path, resolve_part
from .vae_build import (
    CONTEXT_NAMES,
    FIXED_CONTEXT,
    PIXELS_FOR,
    NotOnMeta,
    build_part,
    build_vae,
    call_arguments,
    load_model_state,
    resolve,
)

__all__ = [
    "BUILTINS",
    "CONTEXT_NAMES",
    "ENTRY_POINT_GROUP",
    "FIXED_CONTEXT",
    "PIXELS_FOR",
    "NotOnMeta",
    "build_part",
    "build_vae",
    "call_arguments",
    "check_contract",
    "check_vae",
    "command_line_modules",
    "count_parameters",
    "describe_parts",
    "entry_points",
    "generative_parameters",
    "import_path",
    "is_import_path",
    "load_model_state",
    "model_summary",
    "part_label",
    "part_names",
    "resolve",
    "resolve_part",
]
