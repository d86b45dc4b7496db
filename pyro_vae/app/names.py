"""The short names of the parts a run may use: declared in :mod:`pyro_vae.config.names`,
re-exported here for code that imports them from their former home."""

from __future__ import annotations

from ..config.names import ENTRY_POINT_GROUP, entry_points, part_names

__all__ = ["ENTRY_POINT_GROUP", "entry_points", "part_names"]
