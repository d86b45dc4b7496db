"""Frozen sections: the settings of a configuration that has been resolved once (validated, its
defaults filled in, its parts found) and is no longer to be changed. A frozen section is an
instance of a subclass of its section (so it is still a :class:`TrainConfig`, ...) whose fields
cannot be assigned (a :class:`Frozen`); being one tells the code below the resolution (the
trainer) that it need not validate it again. To change a setting, change a copy
(``RunConfig.copy``)."""

from __future__ import annotations

import copy
from dataclasses import FrozenInstanceError, fields
from typing import Any, TypeVar

T = TypeVar("T")


class Frozen:
    """Mixed into a section's frozen subclass: assignment refused once frozen."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_frozen"):
            raise FrozenInstanceError(
                f"cannot assign to {name!r}: a resolved configuration is frozen (change a copy: "
                "cfg.copy())"
            )
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete {name!r}: a resolved configuration is frozen")

    def __eq__(self, other: object) -> bool:
        """Equal to a section of its kind with the same values, frozen or not."""
        base = type(self).__mro__[2]
        if not isinstance(other, base):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(base))

    __hash__ = None  # type: ignore[assignment]  (mutable sections are not hashable either)


_CLASSES: dict[type, type] = {}


def _frozen_class(cls: type) -> type:
    if cls not in _CLASSES:
        _CLASSES[cls] = type(f"Frozen{cls.__name__}", (Frozen, cls), {"__module__": cls.__module__})
    return _CLASSES[cls]


def freeze(section: T) -> T:
    """A frozen deep copy of ``section`` (a section dataclass); ``section`` is untouched."""
    if is_frozen(section):
        return section
    cls = _frozen_class(type(section))
    frozen = object.__new__(cls)
    object.__setattr__(frozen, "__dict__", copy.deepcopy(section.__dict__))
    object.__setattr__(frozen, "_frozen", True)
    return frozen


def thaw(section: T) -> T:
    """A plain, mutable copy of ``section`` (frozen or not)."""
    cls = type(section)
    plain = cls.__mro__[2] if issubclass(cls, Frozen) else cls
    values = {k: v for k, v in copy.deepcopy(section.__dict__).items() if k != "_frozen"}
    return plain(**values)


def is_frozen(section: object) -> bool:
    """Whether ``section`` was frozen by :func:`freeze` (resolved: not to be checked again)."""
    return isinstance(section, Frozen)  # made by freeze() only, which sets the flag at once
