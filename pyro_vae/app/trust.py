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

A vouch is for a *file*, not only a name. ``pyro-vae train`` writes ``module LOCATION``: the
resolved file (or package directory) the module was imported from, and a line with a location
vouches for that location only. A line that names a module alone (or ``PYRO_VAE_TRUST``) vouches
for it where the user's own path finds it, never in the current directory: otherwise any folder
one ``cd``s into (a download, say) could bring its own file of a vouched name. "In the current
directory" is where the import system finds it, before links are followed: a link there
(``userparts.py -> .sub/userparts.py``, a linked package directory) is in the current directory
wherever it points; the resolved location is what a ``module LOCATION`` line is matched against.
``--trust`` on the command line is the user's choice for this command, wherever the module lies.

Nothing here imports torch (the command line reads it before choosing a command).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

ENV_VAR = "PYRO_VAE_TRUST"
ALLOW_LIST = "trusted-parts"
ALWAYS_TRUSTED = ("pyro_vae",)
"""pyro-vae's own package: its built-in parts and everything in it."""
BY_NAME = ""
"""The location of an allow-list line that names a module alone."""
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


def _entries(text: str) -> dict[str, set[str]]:
    """``module -> locations`` from allow-list lines ``module [LOCATION]`` (``#`` at the start of
    a line or after a blank starts a comment; :data:`BY_NAME` for a line without a location)."""
    entries: dict[str, set[str]] = {}
    for line in text.splitlines():
        line = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()
        word, _, location = line.partition(" ")
        location = location.strip()
        if word and is_module_name(module_of(word)):
            where = location if os.path.isabs(location) else BY_NAME
            entries.setdefault(module_of(word), set()).add(where)
    return entries


def _allow_list() -> dict[str, set[str]]:
    try:
        with open(allow_list_path(), "rb") as f:
            data = f.read(MAX_ALLOW_LIST_BYTES)
    except OSError:  # none yet (or unreadable): nothing vouched there
        return {}
    return _entries(data.decode("utf-8", "replace"))


def _listed() -> dict[str, set[str]]:
    """The allow-list and ``PYRO_VAE_TRUST`` (names only) together."""
    listed = _allow_list()
    env = os.environ.get(ENV_VAR, "").replace(os.pathsep, ",").replace(",", "\n")
    for module in _entries(env):
        listed.setdefault(module, set()).add(BY_NAME)
    return listed


def trusted_modules() -> set[str]:
    """Every module vouched for now, wherever it lies or at some location: pyro-vae's own,
    ``--trust``, the environment, the allow-list."""
    return {*ALWAYS_TRUSTED, *_vouched, *_listed()}


def _found_at(module: str) -> list[str]:
    """Where the import system finds ``module``'s top-level package or module, as found (links
    not followed): its file, or its package directories; empty when it is not found or has no
    file. Nothing is executed: only the top-level name is looked up."""
    top = module.split(".", 1)[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations is not None:
        with contextlib.suppress(KeyError):  # a namespace path found before its parent import
            return [str(p) for p in spec.submodule_search_locations]
        return []
    return [spec.origin] if spec.origin and spec.has_location else []


def location_of(module: str) -> str | None:
    """Where ``module``'s top-level package or module is (or would be) imported from: its
    resolved file, or its package directories (joined with ``os.pathsep``); None when it is not
    found or has no file. This is what a vouch for a file names and is matched against."""
    paths = _found_at(module)
    if not paths:
        return None
    return os.pathsep.join(sorted(str(Path(p).resolve()) for p in paths))


def in_current_directory(module: str) -> bool:
    """Whether the import system finds ``module`` in the current directory rather than on the
    user's path: the directory it found the file or package in (``sys.path``'s entry, however
    spelled: ``''``, ``.``, a link) is the current directory, or the file itself, links
    followed, lies there. A link in the current directory (``userparts.py -> .sub/x.py`` or
    to a file anywhere) is found in the current directory, wherever it points."""
    paths = _found_at(module)
    if not paths:
        return False
    try:
        here = Path.cwd().resolve()
    except OSError:  # the current directory is gone: nothing can be found there
        return False
    return any(
        Path(os.path.abspath(p)).parent.resolve() == here or Path(p).resolve().parent == here
        for p in paths
    )


def is_trusted(module: str, also: Iterable[str] = (), location: str | None = None) -> bool:
    """Whether ``module`` (found at ``location``, see :func:`location_of`) is, or lies in a
    package that is, vouched for: pyro-vae's own, ``--trust`` or ``also`` wherever it lies; an
    allow-list line with a location there only; a line or ``PYRO_VAE_TRUST`` naming the module
    alone anywhere but the current directory (:func:`in_current_directory`)."""

    def covers(trusted: str) -> bool:
        return module == trusted or module.startswith(trusted + ".")

    if any(covers(trusted) for trusted in {*ALWAYS_TRUSTED, *_vouched, *also}):
        return True
    for trusted, locations in _listed().items():
        if not covers(trusted):
            continue
        if location is not None and location in locations:
            return True
        if BY_NAME in locations and not in_current_directory(module):
            return True
    return False


def vouched_elsewhere(module: str) -> list[str]:
    """The locations the allow-list vouches for ``module`` (or a package above it) at."""
    return sorted(
        where
        for trusted, locations in _listed().items()
        if module == trusted or module.startswith(trusted + ".")
        for where in locations
        if where != BY_NAME
    )


def remember(modules: Iterable[str] | Mapping[str, str | None]) -> Path | None:
    """Add ``modules`` to the user's allow-list (written atomically), each with its location
    (``{module: location}``; a plain list is looked up with :func:`location_of`); the path
    written, or None when nothing was new. An allow-list that cannot be written raises
    OSError."""
    if not isinstance(modules, Mapping):
        modules = {module_of(m): location_of(module_of(m)) for m in modules}
    listed = _allow_list()
    new = sorted(
        (module_of(m), where or BY_NAME)
        for m, where in modules.items()
        if (where or BY_NAME) not in listed.get(module_of(m), set())
    )
    if not new:
        return None
    path = allow_list_path()
    try:
        with open(path, "rb") as f:
            old = f.read(MAX_ALLOW_LIST_BYTES).decode("utf-8", "replace")
    except FileNotFoundError:
        old = (
            "# Modules whose parts pyro-vae may import when a run's config.json names them:\n"
            "# 'module LOCATION' vouches for the module at that file or package directory only,\n"
            "# 'module' alone for the module where your path finds it (not the current\n"
            "# directory). pyro-vae train adds the modules named on its command line.\n"
        )
    if old and not old.endswith("\n"):
        old += "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{ALLOW_LIST}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(old + "".join(f"{m} {where}".rstrip() + "\n" for m, where in new))
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
    "in_current_directory",
    "is_trusted",
    "location_of",
    "remember",
    "trusted_modules",
    "vouch",
    "vouched_elsewhere",
    "vouching",
]
