"""How a setting is declared: one dataclass field whose metadata holds a :class:`Setting` (its
constraint, help text and command-line spelling) next to its default. The command line's
options (:mod:`pyro_vae.app.options`) and the per-field checks (:func:`field_problems`) are
generated from these declarations; nothing else lists a setting.

A section (``DataConfig``, ``TrainConfig``, ...) declares a field as::

    batch_size: int = setting(128, Integer(1), "minibatch size")

which is ``--batch-size B`` on the command line (``type=positive_int``, ``default=128``,
help ``minibatch size (default: %(default)s)``) and, in a ``config.json``, ``"batch_size"``
checked by ``Integer(1)``: "batch-size must be a positive integer, got 0".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..checks import Problems
from .constraints import Constraint

DEFAULT_WORDS = "%(default)s"
"""What ``--help`` says of a default unless a setting words it: its value."""


@dataclass(frozen=True)
class Setting:
    """One setting's declaration, kept in its field's metadata under ``"setting"``.

    ``flag``: the command-line option (``""``: ``--`` and the field name with dashes; ``None``:
    none, a record rather than an option). ``label``: the setting's name in a problem's
    sentence (default: the flag without ``--``). ``default_words``: what ``--help`` says the
    default is (``None``: nothing). ``action``: argparse's, for a boolean flag."""

    constraint: Constraint
    help: str = ""
    default_words: str | None = DEFAULT_WORDS
    flag: str | None = ""
    label: str | None = None
    metavar: str | None = None
    action: Any = None

    def argparse_settings(self, default_words: str | None | object = ...) -> dict[str, Any]:
        """The argparse keywords of the option (without its flag, dest and default);
        ``default_words`` in place of the declared ones."""
        found: dict[str, Any] = dict(self.constraint.cli())
        if self.action is not None:
            found = {"action": self.action}
        if self.metavar is not None:
            found["metavar"] = self.metavar
        words = self.default_words if default_words is ... else default_words
        found["help"] = help_text(self.help, words, self.constraint)  # type: ignore[arg-type]
        return found


def help_text(words: str, default_words: str | None, constraint: Constraint) -> str:
    """``words`` (its ``{choices}`` filled in from ``constraint``) then ``(default: ...)``."""
    words = words.replace("{choices}", constraint.choices_text())
    if default_words is None:
        return words
    return f"{words} (default: {default_words})" if words else f"(default: {default_words})"


def setting(default: Any, constraint: Constraint, help: str = "", **how: Any) -> Any:
    """A dataclass field with ``default`` (a list or dict is copied for each instance) and its
    :class:`Setting` (``how``: the Setting's other fields)."""
    meta = {"setting": Setting(constraint, help, **how)}
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Declared:
    """A declared field of a section: its name, default and :class:`Setting`."""

    name: str
    default: Any
    setting: Setting

    @property
    def flag(self) -> str | None:
        if self.setting.flag is None:
            return None
        return self.setting.flag or "--" + self.name.replace("_", "-")

    @property
    def label(self) -> str:
        return self.setting.label or self.name.replace("_", "-")


def declared(section: type) -> Iterator[Declared]:
    """The declared fields of the dataclass ``section``, in order."""
    for f in dataclasses.fields(section):
        found = f.metadata.get("setting")
        if found is None:
            raise TypeError(f"{section.__name__}.{f.name} is not declared with setting()")
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = f.default
        yield Declared(f.name, default, found)


def field_problems(section: Any) -> Problems:
    """Every field of ``section`` that its constraint refuses, one sentence each (``None`` is
    accepted where it is the declared default: "decided on resolving")."""
    p = Problems()
    for d in declared(type(section)):
        value = getattr(section, d.name)
        if value is None and d.default is None:
            continue
        d.setting.constraint.check(d.label, value, p)
    return p


@dataclass(frozen=True)
class Shorthand:
    """A command-line option for one keyword argument of a built-in part: ``--components 5`` is
    ``--prior-kwargs '{"components": 5}'``. ``default`` is the part's own (for ``--help``)."""

    name: str
    kind: str
    default: Any
    constraint: Constraint
    help: str
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def argparse_settings(self) -> dict[str, Any]:
        found: dict[str, Any] = dict(self.constraint.cli())
        if self.metavar is not None:
            found["metavar"] = self.metavar
        found["help"] = help_text(self.help, str(self.default), self.constraint)
        return found
