"""Moved to :mod:`pyro_vae.store.strict_json` (kept so that imports of the old place resolve)."""

from ..store.strict_json import MAX_INT_DIGITS, MAX_MAGNITUDE, JSONContentError, parse_json

__all__ = ["MAX_INT_DIGITS", "MAX_MAGNITUDE", "JSONContentError", "parse_json"]
