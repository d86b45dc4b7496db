"""JSON of run files parsed with bounded numbers: what pyro-vae reads from ``config.json``,
``metrics.jsonl``, evaluations, baselines and interpolations may come from someone else.

Python's :func:`json.loads` turns a 5,000-digit integer into a ``ValueError`` from deep inside
(the interpreter's int-string conversion limit), ``NaN`` and ``Infinity`` into floats no
pyro-vae file holds, ``1e400`` into ``inf``, and a deeply nested array into a
``RecursionError``. :func:`parse_json` refuses each of them with :class:`JSONContentError`, a
``ValueError`` whose message says what was found; the caller names the file. It parses text or
bytes (UTF-8) already read, so it composes with any way of opening the file.

Numbers that pass are finite and at most :data:`MAX_MAGNITUDE` in size; each file's reader
then checks every field's type and range.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_INT_DIGITS = 30
"""Integer literals longer than this are refused (seeds, counts and sizes have at most 20)."""

MAX_MAGNITUDE = 1e300
"""Numbers larger than this in size are refused: arithmetic on them overflows to infinity."""

__all__ = ["MAX_INT_DIGITS", "MAX_MAGNITUDE", "JSONContentError", "parse_json"]


class JSONContentError(ValueError):
    """JSON that is malformed or holds a value no pyro-vae file holds."""


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise JSONContentError(
            f"an integer of {digits} digits (at most {MAX_INT_DIGITS} are allowed)"
        )
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        shown = text if len(text) <= 24 else text[:20] + "..."
        raise JSONContentError(f"the number {shown} is out of range (at most {MAX_MAGNITUDE:g})")
    return value


def _parse_constant(text: str) -> Any:
    raise JSONContentError(f"{text} is not a finite number (pyro-vae never writes one)")


def parse_json(data: str | bytes) -> Any:
    """The value of the JSON document ``data`` (UTF-8 bytes or text), its numbers bounded (see
    the module's docstring); :class:`JSONContentError` says what is wrong otherwise."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        return json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except JSONContentError:
        raise
    except json.JSONDecodeError as exc:
        raise JSONContentError(f"not valid JSON ({exc})") from None
    except UnicodeDecodeError as exc:
        raise JSONContentError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise JSONContentError("nested too deeply") from None
