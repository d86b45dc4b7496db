"""Typed fields of the records pyro-vae writes, and the base class that reads and writes them.

A record is a frozen dataclass whose fields each declare, in their metadata, how the field is
spelled in JSON and what it may hold (:func:`count`, :func:`number`, :func:`text`, ...).
:meth:`Record.from_json` checks every field of a parsed JSON value against that declaration
(the value may come from someone else: see :mod:`.strict_json`) and raises
:class:`RecordError`, a ``ValueError`` whose one-line message says what is wrong; the caller
names the file. :meth:`Record.to_json` gives back the JSON value, fields the file did not
declare kept as they were (``extra``). Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

MAX_VALUE = 3.4028234663852886e38
"""The largest size of a number a model computes (``torch.finfo(torch.float32).max``); more is
not a result."""

MAX_COUNT = 10**15
"""The largest epoch, step, example or image count a result file may hold."""

R = TypeVar("R", bound="Record")


class RecordError(ValueError):
    """A parsed JSON value that is not the record pyro-vae writes; the message says why."""


def is_value(value: Any) -> bool:
    """A finite number (not a boolean) of at most :data:`MAX_VALUE` in size."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) <= MAX_VALUE
    )


def is_count(value: Any, minimum: int = 0) -> bool:
    """An integer (not a boolean) from ``minimum`` to :data:`MAX_COUNT`."""
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= MAX_COUNT


def shown(value: Any) -> str:
    """``repr`` of a value, cut short (a crafted file can hold a long string)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:36] + "..."


@dataclass(frozen=True)
class Spec:
    """How one field is spelled in JSON (``key``; default: the field's name), what it holds
    (``check``, worded as ``wanted``), whether null is allowed (``optional``) and whether
    the key may be absent (``omit``: then the field is ``None`` and ``to_json`` leaves the
    key out). ``read``/``write`` convert nested values (records, lists of records)."""

    check: Callable[[Any], bool]
    wanted: str
    key: str | None = None
    optional: bool = False
    omit: bool = False
    read: Callable[[Any, str], Any] | None = None
    """``read(value, key)``: the field's value from the checked JSON value."""
    write: Callable[[Any], Any] | None = None


def _field(spec: Spec, default: Any) -> Any:
    if default is dataclasses.MISSING and (spec.optional or spec.omit):
        default = None
    return dataclasses.field(default=default, metadata={"spec": spec})


def count(
    minimum: int = 1, *, key: str | None = None, optional: bool = False, omit: bool = False
) -> Any:
    """An integer from ``minimum`` to :data:`MAX_COUNT`."""
    wanted = f"an integer from {minimum} to {MAX_COUNT:.0e}"
    spec = Spec(lambda v: is_count(v, minimum), wanted, key, optional, omit)
    return _field(spec, dataclasses.MISSING)


def number(
    *,
    key: str | None = None,
    optional: bool = False,
    omit: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Any:
    """A finite number of at most :data:`MAX_VALUE` in size, from ``minimum`` to ``maximum``
    where given (a standard error, a duration or a count of effective samples is never
    negative, an acceptance rate lies in [0, 1])."""
    low = -MAX_VALUE if minimum is None else minimum
    high = MAX_VALUE if maximum is None else maximum
    if minimum is None and maximum is None:
        wanted = f"a finite number of at most {MAX_VALUE:.3g} in size"
    else:
        wanted = f"a number from {low:.3g} to {high:.3g}"

    def check(value: Any) -> bool:
        return is_value(value) and low <= value <= high

    return _field(Spec(check, wanted, key, optional, omit), dataclasses.MISSING)


def text(*, key: str | None = None, optional: bool = False, omit: bool = False) -> Any:
    """A string."""
    return _field(
        Spec(lambda v: isinstance(v, str), "a string", key, optional, omit), dataclasses.MISSING
    )


def flag(*, key: str | None = None, optional: bool = False, omit: bool = False) -> Any:
    """``true`` or ``false``."""
    spec = Spec(lambda v: isinstance(v, bool), "true or false", key, optional, omit)
    return _field(spec, dataclasses.MISSING)


def obj(*, key: str | None = None, optional: bool = False, omit: bool = False) -> Any:
    """A JSON object kept as parsed (a description pyro-vae writes but never computes with)."""
    spec = Spec(lambda v: isinstance(v, dict), "a JSON object", key, optional, omit)
    return _field(spec, dataclasses.MISSING)


def custom(
    check: Callable[[Any], bool],
    wanted: str,
    *,
    key: str | None = None,
    read: Callable[[Any, str], Any] | None = None,
    write: Callable[[Any], Any] | None = None,
) -> Any:
    """A value ``check`` accepts (worded as ``wanted``), converted by ``read``/``write``."""
    return _field(Spec(check, wanted, key, read=read, write=write), dataclasses.MISSING)


def nested(cls: type[Record], *, key: str | None = None, omit: bool = False) -> Any:
    """A record inside this one."""
    spec = Spec(
        lambda v: isinstance(v, dict),
        "a JSON object",
        key,
        False,
        omit,
        lambda v, where: _inside(where, cls.from_json, v),
        cls.to_json,
    )
    return _field(spec, dataclasses.MISSING)


def items(cls: type[Record], *, key: str | None = None) -> Any:
    """A list of records (a tuple here: records are frozen)."""
    spec = Spec(
        lambda v: isinstance(v, list),
        "a JSON array",
        key,
        read=lambda v, where: tuple(
            _inside(f"{where}[{i}]", cls.from_json, x) for i, x in enumerate(v)
        ),
        write=lambda v: [x.to_json() for x in v],
    )
    return _field(spec, dataclasses.MISSING)


def mapping(cls: type[Record], *, key: str | None = None) -> Any:
    """A JSON object of records by name (kept in the file's order)."""
    spec = Spec(
        lambda v: isinstance(v, dict),
        "a JSON object",
        key,
        read=lambda v, where: {
            str(k): _inside(f"{where}[{k!r}]", cls.from_json, x) for k, x in v.items()
        },
        write=lambda v: {k: x.to_json() for k, x in v.items()},
    )
    return _field(spec, dataclasses.MISSING)


def _inside(where: str, read: Callable[[Any], Any], value: Any) -> Any:
    try:
        return read(value)
    except RecordError as exc:
        raise RecordError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class Record:
    """Base of the typed records: ``from_json`` checks, ``to_json`` writes back. Keys the
    record does not declare are kept in ``extra`` (so nothing a file holds is lost when it is
    rewritten) and never read."""

    WHAT: ClassVar[str] = "record"

    extra: Mapping[str, Any] = dataclasses.field(
        default_factory=dict, kw_only=True, compare=False, repr=False
    )

    @classmethod
    def specs(cls) -> list[tuple[dataclasses.Field, Spec]]:
        return [(f, f.metadata["spec"]) for f in dataclasses.fields(cls) if "spec" in f.metadata]

    @classmethod
    def from_json(cls: type[R], value: Any) -> R:
        """The record in ``value`` (a parsed JSON value), every field checked."""
        if not isinstance(value, dict):
            raise RecordError(f"not a JSON object ({cls.WHAT})")
        kwargs: dict[str, Any] = {}
        known = set()
        for f, spec in cls.specs():
            key = spec.key or f.name
            known.add(key)
            if key not in value:
                if f.default is dataclasses.MISSING and not spec.omit:
                    raise RecordError(f"{key} is missing ({cls.WHAT})")
                continue
            raw = value[key]
            if raw is None and spec.optional:
                kwargs[f.name] = None
                continue
            if not spec.check(raw):
                null = " or null" if spec.optional else ""
                raise RecordError(f"{key} must be {spec.wanted}{null}, got {shown(raw)}")
            kwargs[f.name] = spec.read(raw, key) if spec.read else raw
        extra = {k: v for k, v in value.items() if k not in known}
        record = cls(**kwargs, extra=extra)
        record.check()
        return record

    def check(self) -> None:
        """Checks across fields (a subclass's); raise :class:`RecordError`."""

    def checked(self: R) -> R:
        """This record with every field checked as :meth:`from_json` checks a file's (one
        computed in memory, e.g. an estimator's summary, before it is kept)."""
        return type(self).from_json(self.to_json())

    def to_json(self) -> dict[str, Any]:
        """The JSON value of this record (what :meth:`from_json` reads back)."""
        out: dict[str, Any] = {}
        for f, spec in self.specs():
            value = getattr(self, f.name)
            if value is None and spec.omit:
                continue
            out[spec.key or f.name] = (
                spec.write(value) if spec.write and value is not None else value
            )
        return {**out, **{k: v for k, v in self.extra.items() if k not in out}}
