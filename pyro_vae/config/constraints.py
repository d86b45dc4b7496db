"""What values a setting takes, each as one small object (in the spirit of scikit-learn's
``_parameter_constraints``): :meth:`Constraint.check` adds a sentence to a
:class:`~pyro_vae.checks.Problems` list for a value read from a ``config.json`` or built in
Python, and :meth:`Constraint.cli` gives the argparse settings (``type``, ``choices``, ``nargs``)
that read the same values from the command line, with their own one-line messages."""

from __future__ import annotations

import argparse
import difflib
import functools
import json
import os
from dataclasses import dataclass
from typing import Any

from ..checks import Problems
from ..errors import ConfigError
from .datasets import is_file_source
from .names import DATASET_NAMES, part_names

MAX_INT = 2**63 - 1
"""The largest count or seed an option takes: a tensor's size is a 64-bit integer, and
``torch.manual_seed`` takes at most this."""
MAX_DEVICE_INDEX = 127
"""The largest index ``cuda:N`` may name: PyTorch keeps a device index in 8 bits and wraps a
larger one (``cuda:128`` would be ``cuda:-128``)."""
DEVICE_TYPES = ("cpu", "cuda")
"""The device types ``--device`` names (besides ``auto``)."""


# ---------------------------------------------------------------- command-line readers
def _ascii_int(text: str, expected: str) -> int:
    """An integer written in ASCII digits (an optional sign, nothing else: no ``1_000``, no
    other scripts' digits), at most :data:`MAX_INT` in size."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not (digits.isascii() and digits.isdigit()):
        raise argparse.ArgumentTypeError(f"expected {expected} in ASCII digits, got {text!r}")
    if len(digits) > 19 or abs(int(text)) > MAX_INT:  # no size or seed is that large
        raise argparse.ArgumentTypeError(f"expected {expected} below 2^63, got {text}")
    return int(text)


def positive_int(text: str) -> int:
    value = _ascii_int(text, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def threads_count(text: str) -> int | str:
    """``--threads``: ``auto`` or a positive integer (at most 1024)."""
    if text == "auto":
        return text
    value = _ascii_int(text, "auto or a positive integer")
    if not 1 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"expected auto or 1 to 1024 threads, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    value = _ascii_int(text, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def seed_int(text: str) -> int:
    """``--seed``: an integer from 0 to 2^63 - 1 (what ``torch.manual_seed`` takes)."""
    return nonnegative_int(text)  # at most MAX_INT


def positive_float(text: str) -> float:
    try:
        if not text.isascii():
            raise ValueError
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def parse_device(name: object) -> tuple[str, int | None]:
    """``--device`` as (type, index): ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` with N written
    in ASCII digits, 0 <= N <= :data:`MAX_DEVICE_INDEX`. Raises :class:`ConfigError` with one
    sentence otherwise (whether device N exists is :func:`~pyro_vae.infer.training.
    resolve_device`'s to say)."""
    if not isinstance(name, str):
        raise ConfigError(f"--device must be a string, got {name!r}")
    kind, colon, index = name.partition(":")
    if name == "auto" or (kind in DEVICE_TYPES and not colon):
        return kind, None
    if kind == "cuda" and colon and index.isascii() and index.isdigit() and len(index) <= 3:
        if int(index) <= MAX_DEVICE_INDEX:
            return kind, int(index)
    raise ConfigError(
        f"--device {name!r}: give auto, cpu, cuda or cuda:N (N a device number in ASCII digits, "
        f"0 to {MAX_DEVICE_INDEX})"
    )


def device_name(text: str) -> str:
    """``--device``: auto, cpu, cuda or cuda:N, N in ASCII digits (whether device N exists is
    checked when the command runs)."""
    try:
        parse_device(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--device ")) from None
    return text


def path_text(text: str) -> str:
    """A path option: not empty, no NUL character, and a leading ``~user`` that names a user
    (expanded where the path is used; checked here so that the message comes at once)."""
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    if text.startswith("~"):
        try:
            expanded = os.path.expanduser(text)
        except (RuntimeError, KeyError):  # no home directory to be found
            expanded = text
        if expanded.startswith("~"):
            user = text[1:].split("/", 1)[0] or "the current user"
            raise argparse.ArgumentTypeError(
                f"{text!r}: no home directory for {user} (no such user?)"
            )
    return text


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object {{...}}, got {text!r}")
    return value


# ---------------------------------------------------------------- constraints
class Constraint:
    """The values a setting takes: :meth:`check` for a value from JSON or Python, :meth:`cli`
    for the argparse settings that read one from the command line."""

    def check(self, name: str, value: Any, problems: Problems) -> None:
        raise NotImplementedError

    def cli(self) -> dict[str, Any]:
        return {}

    def choices_text(self) -> str:
        """The values in words, for a help text's ``{choices}``."""
        return ""


@dataclass(frozen=True)
class Integer(Constraint):
    """An int (not a bool) with ``low <= value`` (and ``<= high`` when given)."""

    low: int = 1
    high: int | None = None

    def check(self, name: str, value: Any, problems: Problems) -> None:
        problems.integer(name, value, minimum=self.low, maximum=self.high)

    def cli(self) -> dict[str, Any]:
        if self.low == 1 and self.high in (None, MAX_INT):
            return {"type": positive_int}
        if self.low == 0 and self.high in (None, MAX_INT):
            return {"type": seed_int if self.high == MAX_INT else nonnegative_int}
        raise NotImplementedError(f"no command-line reader for {self}")


@dataclass(frozen=True)
class PositiveNumber(Constraint):
    """A finite int or float above 0 (not a bool)."""

    def check(self, name: str, value: Any, problems: Problems) -> None:
        problems.positive_number(name, value)

    def cli(self) -> dict[str, Any]:
        return {"type": positive_float}


@dataclass(frozen=True)
class OneOf(Constraint):
    """One of the strings ``options`` (listed in this order by ``--help``)."""

    options: tuple[str, ...]

    def check(self, name: str, value: Any, problems: Problems) -> None:
        problems.choice(name, value, self.options)

    def cli(self) -> dict[str, Any]:
        return {"choices": list(self.options)}

    def choices_text(self) -> str:
        return ", ".join(self.options)


@dataclass(frozen=True)
class Boolean(Constraint):
    """``True`` or ``False`` (the command line's flag is the setting's ``action``)."""

    def check(self, name: str, value: Any, problems: Problems) -> None:
        problems.boolean(name, value)


@dataclass(frozen=True)
class Text(Constraint):
    """A non-empty string without NUL; ``path``: read from the command line by
    :func:`path_text`."""

    path: bool = False

    def check(self, name: str, value: Any, problems: Problems) -> None:
        problems.text(name, value)

    def cli(self) -> dict[str, Any]:
        return {"type": path_text} if self.path else {}


@dataclass(frozen=True)
class PartName(Text):
    """The name of a part of ``kind``: a built-in or published short name, or an import path
    (whether it exists is the registry's to say)."""

    kind: str = "prior"

    def choices_text(self) -> str:
        return ", ".join(part_names(self.kind)) + ", or an import path module:Class"

    def cli(self) -> dict[str, Any]:
        return {"type": part_name_reader(self.kind)}


@functools.cache  # one reader per kind: the generated options compare equal
def part_name_reader(kind: str) -> Any:
    """The command-line reader of a part's name: an import path (``module:Class``, found later
    by the registry), or a built-in or published short name; anything else is refused while
    the options are read (before torch is loaded), with the closest name."""

    def read(text: str) -> str:
        if not text or "\0" in text:
            raise argparse.ArgumentTypeError(f"expected a {kind} name, got {text!r}")
        names = part_names(kind)
        if ":" in text or text in names:
            return text
        close = difflib.get_close_matches(text, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise argparse.ArgumentTypeError(
            f"{text!r} is not one of: {', '.join(names)}, or an import path module:Class{hint}"
        )

    read.__name__ = f"{kind} name"  # argparse names the reader in some of its messages
    return read


@dataclass(frozen=True)
class Device(Constraint):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (:func:`parse_device`)."""

    def check(self, name: str, value: Any, problems: Problems) -> None:
        try:
            parse_device(value)
        except ConfigError:
            problems.append(f"{name} must be auto, cpu, cuda or cuda:N, got {value!r}")

    def cli(self) -> dict[str, Any]:
        return {"type": device_name}


@dataclass(frozen=True)
class ListOf(Constraint):
    """A list whose every item meets ``item`` (named ``each <item_name>`` in a message);
    ``nonempty``: with at least one item. On the command line, one or more values."""

    item: Constraint
    what: str = "list"
    item_name: str = "item"
    nonempty: bool = False

    def check(self, name: str, value: Any, problems: Problems) -> None:
        if not isinstance(value, list) or (self.nonempty and not value):
            problems.append(f"{name} must be a {self.what}, got {value!r}")
            return
        for entry in value:
            self.item.check(f"each {self.item_name}", entry, problems)

    def cli(self) -> dict[str, Any]:
        return {**self.item.cli(), "nargs": "+" if self.nonempty else "*"}


@dataclass(frozen=True)
class JSONObject(Constraint):
    """A JSON object (a dict with string keys) nested at most ``max_depth`` levels."""

    max_depth: int = 8

    def check(self, name: str, value: Any, problems: Problems) -> None:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            problems.append(f"{name} must be a JSON object, got {value!r}")
        elif _depth(value) > self.max_depth:
            problems.append(f"{name} is nested deeper than {self.max_depth} levels")

    def cli(self) -> dict[str, Any]:
        return {"type": json_object}


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@dataclass(frozen=True)
class DataSource(Constraint):
    """``--dataset``: a named data set, or the path of a user's data file or image folder
    (:func:`~.datasets.is_file_source`: a ``/`` in it, or a data file's ending)."""

    def check(self, name: str, value: Any, problems: Problems) -> None:
        if not (value in DATASET_NAMES or is_file_source(value)):
            problems.append(
                f"{name} {value!r} is not one of: {', '.join(sorted(DATASET_NAMES))}, nor a data "
                "file's path (one with a / in it, or ending .csv, .tsv, .npy, .npz, .idx, .gz)"
            )

    def cli(self) -> dict[str, Any]:
        return {"type": data_source}

    def choices_text(self) -> str:
        return ", ".join(sorted(DATASET_NAMES))


def data_source(text: str) -> str:
    """The reader of ``--dataset``: a named data set or a data file's path (checked as
    :func:`path_text`); anything else is refused as an invalid choice."""
    if text in DATASET_NAMES:
        return text
    if is_file_source(text):
        return path_text(text)
    names = ", ".join(repr(n) for n in sorted(DATASET_NAMES))  # argparse's own words, whose
    raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {names})")  # hint
    # (pyro_vae.app.usage) the README shows; --help says how a path is told from a name


data_source.__name__ = "data set"
