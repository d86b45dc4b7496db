"""The short names of the parts a run may use: the built-ins and those installed packages
publish as entry points, listed without importing a part or torch (the command line's help
shows them; :mod:`.registry` turns a name into a part)."""

from __future__ import annotations

from importlib import metadata

from ..model.names import BUILTIN_PARTS

ENTRY_POINT_GROUP = "pyro_vae.parts"


def entry_points(kind: str) -> dict[str, metadata.EntryPoint]:
    """Parts of ``kind`` that installed packages publish, by short name (not loaded)."""
    found = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        prefix, _, short = ep.name.partition(".")
        if prefix == kind and short:
            found[short] = ep
    return found


def part_names(kind: str) -> list[str]:
    """Short names usable for ``kind``: built-ins, then installed entry points."""
    builtin = sorted(BUILTIN_PARTS[kind])
    return builtin + sorted(set(entry_points(kind)) - set(builtin))
