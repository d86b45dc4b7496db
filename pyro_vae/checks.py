"""Checks of configuration values read from the command line or from a JSON file (which may be
hand-edited or hostile): each check appends a sentence to a list of problems instead of raising,
so that one message can name every invalid option at once."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


class Problems(list):
    """The invalid options found so far, one sentence each."""

    def integer(self, name: str, value: Any, minimum: int | None = 1, maximum: int | None = None):
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and minimum is not None and value < minimum:
            ok = False
        if ok and maximum is not None and value > maximum:
            ok = False
        if not ok:
            if minimum == 1 and maximum is None:
                self.append(f"{name} must be a positive integer, got {value!r}")
            else:
                low = "" if minimum is None else f" >= {minimum}"
                high = "" if maximum is None else f" <= {maximum}"
                self.append(f"{name} must be an integer{low}{high}, got {value!r}")

    def positive_number(self, name: str, value: Any) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or value <= 0:
            self.append(f"{name} must be a positive number, got {value!r}")

    def choice(self, name: str, value: Any, options: Iterable[str]) -> None:
        options = sorted(options)
        if not isinstance(value, str) or value not in options:
            self.append(f"{name} {value!r} is not one of: {', '.join(options)}")

    def boolean(self, name: str, value: Any) -> None:
        if not isinstance(value, bool):
            self.append(f"{name} must be true or false, got {value!r}")

    def text(self, name: str, value: Any, optional: bool = False) -> None:
        if optional and value is None:
            return
        if not isinstance(value, str) or not value or "\0" in value:
            self.append(f"{name} must be a non-empty string, got {value!r}")
