"""Which modules the user vouches for: the only modules, besides pyro-vae's own and those
installed packages publish as parts (entry points), that a part named in a run's
``config.json`` may be imported from.

A run directory may come from someone else, so the import path a configuration names is not by
itself a reason to run that module. The user vouches for a module (and the packages below it)

* on the command line: ``--trust MODULE`` (repeatable) on every command that reads a run;
* in the environment: ``PYRO_VAE_TRUST=mod1,mod2``;
* in their own allow-list, ``$XDG_CONFIG_HOME/pyro-vae/trusted-parts`` (default
  ``~/.config/pyro-vae/trusted-parts``): one module a line, ``#`` starts a comment. ``pyro-vae
  train`` and ``pyro-vae run`` add the module of every part named ``module:Class`` on their
  command line there, once it has been imported and checked, so that the user's own runs
  resume and evaluate without ``--trust``.

Nothing here imports torch (the command line reads it before choosing a command).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

ENV_VAR = "PYRO_VAE_TRUST"
ALLOW_LIST = "trusted-parts"
ALWAYS_TRUSTED = ("pyro_vae",)
"""pyro-vae's own package: its built-in parts and everything in it."""
MAX_ALLOW_LIST_BYTES = 1 << 20

_MODULE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_vouched: set[str] = set()
"""Modules vouched for in this process (``--trust``, :func:`vouch`)."""


def module_of(name: str) -> str:
    """``pkg.mod`` for ``pkg.mod`` or ``pkg.mod:Class``."""
    return name.split(":", 1)[0]


def is_module_name(name: str) -> bool:
    return bool(_MODULE.match(name))


def vouch(names: Iterable[str]) -> None:
    """Vouch, for this process, for the modules ``names`` (``module`` or ``module:Class``) and
    the packages below them: parts a run's configuration names there may be imported."""
    for name in names:
        module = module_of(name)
        if not is_module_name(module):
            raise ValueError(f"not a module name: {name!r}")
        _vouched.add(module)


@contextlib.contextmanager
def vouching(names: Iterable[str]) -> Iterator[None]:
    """:func:`vouch` for ``names`` during the block only (a command's ``--trust``)."""
    saved = set(_vouched)
    try:
        vouch(names)
        yield
    finally:
        _vouched.clear()
        _vouched.update(saved)


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/pyro-vae`` (an absolute ``XDG_CONFIG_HOME`` only, as the XDG rules
    say), else ``~/.config/pyro-vae``."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "pyro-vae"


def allow_list_path() -> Path:
    return config_dir() / ALLOW_LIST


def _names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        word = line.split("#", 1)[0].strip()
        if word and is_module_name(module_of(word)):
            names.add(module_of(word))
    return names


def _allow_list() -> set[str]:
    try:
        with open(allow_list_path(), "rb") as f:
            data = f.read(MAX_ALLOW_LIST_BYTES)
    except OSError:  # none yet (or unreadable): nothing vouched there
        return set()
    return _names(data.decode("utf-8", "replace"))


def trusted_modules() -> set[str]:
    """Every module vouched for now: pyro-vae's own, ``--trust``, the environment, the
    allow-list."""
    env = os.environ.get(ENV_VAR, "").replace(os.pathsep, ",").replace(",", "\n")
    return {*ALWAYS_TRUSTED, *_vouched, *_names(env), *_allow_list()}


def is_trusted(module: str, also: Iterable[str] = ()) -> bool:
    """Whether ``module`` is, or lies in a package that is, vouched for (or in ``also``)."""
    return any(
        module == trusted or module.startswith(trusted + ".")
        for trusted in {*trusted_modules(), *also}
    )


def remember(modules: Iterable[str]) -> Path | None:
    """Add ``modules`` to the user's allow-list (written atomically); the path written, or
    None when nothing was new. An allow-list that cannot be written raises OSError."""
    new = sorted({module_of(m) for m in modules} - _allow_list())
    if not new:
        return None
    path = allow_list_path()
    try:
        with open(path, "rb") as f:
            old = f.read(MAX_ALLOW_LIST_BYTES).decode("utf-8", "replace")
    except FileNotFoundError:
        old = (
            "# Modules whose parts pyro-vae may import when a run's config.json names them\n"
            "# (one a line; pyro-vae train adds the modules named on its command line).\n"
        )
    if old and not old.endswith("\n"):
        old += "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{ALLOW_LIST}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(old + "".join(f"{m}\n" for m in new))
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def trust_argument(text: str) -> str:
    """``--trust``'s value: a module name (``pkg.mod``; ``pkg.mod:Class`` is taken as its
    module)."""
    module = module_of(text)
    if not is_module_name(module):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a module name (package.module, letters, digits, underscores)"
        )
    return module


def add_trust_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust",
        action="append",
        default=[],
        type=trust_argument,
        metavar="MODULE",
        help="vouch for MODULE (and the packages below it): parts the run's config.json names "
        "there may be imported (repeatable; modules named on a pyro-vae train command line "
        f"are remembered in {allow_list_path()})",
    )


__all__ = [
    "ENV_VAR",
    "add_trust_option",
    "allow_list_path",
    "is_trusted",
    "remember",
    "trusted_modules",
    "vouch",
    "vouching",
]
