"""From a part's name to its class: built-in short names, installed entry points and import
paths, behind the trust rule.

A part is named in one of three ways:

* a built-in short name (``--prior mog``);
* an entry-point name: an installed package lists ``KIND.NAME = module:Class`` under the group
  ``pyro_vae.parts`` (``prior.student-t = mypkg.priors:StudentTPrior``), which then works as
  ``--prior student-t`` and shows in ``--help``;
* an import path ``module:Class`` (``--prior mypkg.priors:StudentTPrior``).

Safety: the trust rule. A configuration read from a run directory may come from someone else,
so the import path it names is never by itself a reason to run a module. A part named in a
run's ``config.json`` is resolved only from

* the built-ins and pyro-vae's own package;
* the modules of installed entry points (group ``pyro_vae.parts``);
* modules the user vouches for (:mod:`.trust`): ``--trust MODULE`` on the command,
  ``PYRO_VAE_TRUST``, or the allow-list ``$XDG_CONFIG_HOME/pyro-vae/trusted-parts``, to which
  ``pyro-vae train`` and ``pyro-vae run`` add the modules named on their command line.

Any other module is refused, before anything is imported, with a one-line message that says how
to vouch for it. Even a vouched module is never imported from inside the run directory (or
through a link into it: those ``sys.path`` entries are hidden during the import, and where
each package would come from is checked before it runs); the current directory is searched
last. A part named on the command line (``--prior mymod:Class``) is the user's own choice: it
is imported from the user's path, the current directory first. Either way the named object
must be a class derived from :class:`torch.nn.Module` with a ``forward`` of its own; that is
checked before it is called. An import, a constructor or a check that raises anything (even
``SystemExit``) is a configuration error (exit status 2); Ctrl-C still interrupts. Nothing else
of the configuration can name code.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import pkgutil
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from ..config.names import entry_points, part_names
from ..errors import ConfigError, first_line
from ..model.decoders import DECODERS
from ..model.guides import GUIDES
from ..model.likelihoods import LIKELIHOODS
from ..model.parts import BASES, PART_KINDS
from ..model.priors import PRIORS
from .config import ModelConfig, RunConfig
from .trust import (
    ENV_VAR,
    allow_list_path,
    in_current_directory,
    is_trusted,
    location_of,
    module_of,
    remember,
    trusted_modules,
    vouch,
    vouched_elsewhere,
)

BUILTINS: dict[str, Mapping[str, type[nn.Module]]] = {
    "prior": PRIORS,
    "guide": GUIDES,
    "likelihood": LIKELIHOODS,
    "decoder": DECODERS,
}

_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def is_import_path(name: str) -> bool:
    return ":" in name


# ---------------------------------------------------------------------- finding classes
@contextlib.contextmanager
def _import_scope(untrusted: Path | None) -> Iterator[None]:
    """While active, the current directory is on ``sys.path`` (first, as ``python -m`` has it,
    and as tools that take ``module:Class`` arguments do; last for a configuration read from
    ``untrusted``), and no entry inside ``untrusted`` is: nothing can be imported from there,
    even with the current directory inside it."""
    saved = list(sys.path)
    entries = saved
    if "" not in saved and os.getcwd() not in saved:
        # a configuration read from a run: after everything installed, so that a file lying in
        # the current directory cannot shadow a vouched or installed module
        entries = [os.getcwd(), *saved] if untrusted is None else [*saved, os.getcwd()]
    if untrusted is not None:
        entries = [entry for entry in entries if not _inside(entry or os.getcwd(), untrusted)]
    sys.path[:] = entries
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path[:] = saved


def _inside(path: str | None, untrusted: Path) -> bool:
    if not path:
        return False
    try:
        resolved = Path(path).resolve()
    except OSError:
        return False
    root = untrusted.resolve()
    return resolved == root or root in resolved.parents


def _search_locations(spec: Any) -> list[str]:
    locations = spec.submodule_search_locations
    if locations is None:
        return []
    try:
        return list(locations)
    except KeyError:  # a namespace package's path, found before its parent was imported
        return list(getattr(locations, "_path", []))


def _spec_inside(spec: Any, untrusted: Path) -> bool:
    locations = [spec.origin, *_search_locations(spec)]
    return any(_inside(str(loc), untrusted) for loc in locations if loc)


def _find_child_spec(fullname: str, search: list[str]) -> Any:
    """The spec of ``fullname`` in the directories ``search`` (its parent package's path), found
    by each directory's own finder without importing the parent (a namespace package's
    portions are gathered as the import system would)."""
    portions: list[str] = []
    for entry in search:
        finder = pkgutil.get_importer(entry)
        spec = finder.find_spec(fullname) if finder is not None else None
        if spec is None:
            continue
        if spec.loader is not None:
            return spec
        portions += _search_locations(spec)
    if not portions:
        return None
    spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
    spec.submodule_search_locations = portions
    return spec


def _check_location(module_name: str, untrusted: Path | None) -> None:
    """Find where ``module_name`` and each package above it would be imported from, without
    executing any of them, and refuse a module that would come from inside ``untrusted``
    (reached, say, as ``runs.theirs.evil`` from the run directory's parent)."""
    if untrusted is None:
        return
    parts = module_name.split(".")
    search: list[str] | None = None
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        loaded = sys.modules.get(name)
        if loaded is not None:
            spec = getattr(loaded, "__spec__", None)
        elif i == 0:
            spec = importlib.util.find_spec(name)  # a top-level name: nothing is executed
        else:
            spec = _find_child_spec(name, search or [])
        if spec is None:
            return  # not found: the import fails with its own message
        if _spec_inside(spec, untrusted):
            raise ConfigError(
                f"module {module_name!r} would be imported from inside the run directory "
                f"{untrusted}; a run's configuration may not name code inside the run."
            )
        search = _search_locations(spec)


def _module_file_inside(module: Any, untrusted: Path | None) -> bool:
    return untrusted is not None and _inside(getattr(module, "__file__", None), untrusted)


def _import_class(kind: str, name: str, untrusted: Path | None) -> Any:
    if not _IMPORT_PATH.match(name):
        raise ConfigError(
            f"{kind} {name!r}: an import path has the form package.module:Class "
            "(letters, digits and underscores)"
        )
    module_name, qualname = name.split(":")
    if any(part.startswith("__") for part in name.replace(":", ".").split(".")):
        raise ConfigError(f"{kind} {name!r}: refused: dunder names (__main__ ...) are not parts")
    with _import_scope(untrusted):
        if untrusted is not None:
            _check_vouched(kind, name, module_name, untrusted)
        try:
            _check_location(module_name, untrusted)
        except ConfigError as exc:
            raise ConfigError(f"{kind} {name!r}: {exc}") from None
        loaded = sys.modules.get(module_name)
        if loaded is not None and _module_file_inside(loaded, untrusted):
            raise ConfigError(
                f"{kind} {name!r}: module {module_name!r} lies inside the run directory "
                f"{untrusted}; a run's configuration may not name code inside the run."
            )
        try:
            module = loaded or importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            where = f" outside {untrusted}" if untrusted is not None else ""
            raise ConfigError(
                f"{kind} {name!r}: module {module_name!r} cannot be imported{where} "
                f"({first_line(exc)}). Make it importable: install its package "
                "(pip install -e PATH), run from the directory that holds it, or add that "
                "directory to PYTHONPATH."
            ) from None
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the user's module failed (or exited) while imported
            raise ConfigError(
                f"{kind} {name!r}: importing module {module_name!r} failed: {failure(exc)}"
            ) from exc
    if _module_file_inside(module, untrusted):
        raise ConfigError(
            f"{kind} {name!r}: module {module_name!r} lies inside the run directory "
            f"{untrusted}; a run's configuration may not name code inside the run."
        )
    obj: Any = module
    for attr in qualname.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise ConfigError(f"{kind} {name!r}: {module_name} has no {qualname!r}") from None
    return obj


def resolve_part(kind: str, name: str, untrusted: Path | None = None) -> type[nn.Module]:
    """The class that ``name`` means for a part of ``kind``.

    ``untrusted``: the run directory the name was read from: its import path must be vouched
    for (:mod:`.trust`) and is never imported from inside the run. Without it the name is the
    user's own choice, and its module is vouched for in this process once it has been checked.
    """
    if kind not in BUILTINS:
        raise ConfigError(f"unknown kind of part {kind!r}; one of {', '.join(PART_KINDS)}")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{kind} must be a name or an import path, got {name!r}")
    if name in BUILTINS[kind]:
        return BUILTINS[kind][name]
    if is_import_path(name):
        obj = _import_class(kind, name, untrusted)
    else:
        with _import_scope(untrusted):
            eps = entry_points(kind)
            if name not in eps:
                choices = ", ".join(part_names(kind))
                raise ConfigError(
                    f"{kind} {name!r} is not one of: {choices} (or give an import path "
                    "module:Class)"
                )
            try:
                obj = eps[name].load()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                raise ConfigError(
                    f"{kind} {name!r}: loading entry point {eps[name].value!r} failed: "
                    f"{failure(exc)}"
                ) from exc
    if not (inspect.isclass(obj) and issubclass(obj, nn.Module)):
        raise ConfigError(
            f"{kind} {name!r} is refused: a part must be a class derived from torch.nn.Module "
            f"(pyro_vae.model.parts.{BASES[kind].__name__}), not {type(obj).__name__} "
            f"{getattr(obj, '__qualname__', obj)!r}"
        )
    for other, base in BASES.items():
        if other != kind and issubclass(obj, base):
            raise ConfigError(f"{kind} {name!r}: {obj.__qualname__} is a {other}, not a {kind}")
    if inspect.isabstract(obj):
        raise ConfigError(f"{kind} {name!r}: {obj.__qualname__} is abstract (forward missing?)")
    if getattr(obj, "forward", None) is nn.Module.forward:
        raise ConfigError(
            f"{kind} {name!r} is refused: {obj.__qualname__} has no forward method of its own "
            f"(a part derives from pyro_vae.model.parts.{BASES[kind].__name__} and defines "
            "forward)"
        )
    if untrusted is None and is_import_path(name):
        vouch([name])  # the user's own choice: runs naming it may use it in this process
    return obj


def _check_vouched(kind: str, name: str, module_name: str, untrusted: Path) -> None:
    """Refuse, before anything is imported, a module that a run's configuration names and that
    is neither pyro-vae's, an installed entry point's nor vouched for where it would be imported
    from (:mod:`.trust`; called inside :func:`_import_scope`, so that the location found is the
    one the import would use)."""
    installed = {module_of(ep.value) for k in PART_KINDS for ep in entry_points(k).values()}
    location = location_of(module_name)
    if is_trusted(module_name, installed, location):
        return
    elsewhere = vouched_elsewhere(module_name)
    if elsewhere:
        why = (
            f"you vouched for {module_name!r} at {', '.join(elsewhere)}, but here it would be "
            f"imported from {location or 'nowhere'}"
        )
    elif (
        location
        and in_current_directory(module_name)
        and any(module_name == t or module_name.startswith(t + ".") for t in trusted_modules())
    ):
        why = (
            f"{module_name!r} is vouched for by name, which does not cover a file in the "
            "current directory"
        )
    else:
        why = f"module {module_name!r} is not built in, not an installed part and not vouched for"
    if location and in_current_directory(module_name):
        how = f"or add the line '{module_name} {location}' to {allow_list_path()}"
    else:
        how = f"or set {ENV_VAR}={module_name}, or add it to {allow_list_path()}"
    raise ConfigError(
        f"{kind} {name!r} in {untrusted / 'config.json'} is refused: {why}, and a run's "
        f"configuration never chooses code by itself. If you trust it: add --trust "
        f"{module_name} to the command ({how})"
    )


def failure(exc: BaseException) -> str:
    """What the user's code raised, in a few words (``sys.exit`` included)."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {first_line(exc)}"


def command_line_modules(cfg: RunConfig | ModelConfig) -> list[str]:
    """The modules of the parts ``cfg`` names ``module:Class``, each imported and checked as
    the user's own choice (and so vouched for in this process)."""
    model = cfg.model if isinstance(cfg, RunConfig) else cfg
    modules = []
    for kind in PART_KINDS:
        name = model.part(kind)[0]
        if isinstance(name, str) and is_import_path(name):
            resolve_part(kind, name)
            modules.append(module_of(name))
    return sorted(set(modules))


def remember_parts(cfg: RunConfig) -> None:
    """Vouch for the modules of the parts the command line names ``module:Class`` (imported and
    checked first), in the user's allow-list, so that their runs resume and evaluate later
    (see :mod:`.trust`); an allow-list that cannot be written is a note, not an
    error."""
    modules = command_line_modules(cfg)
    try:
        path = remember(modules)
    except OSError as exc:
        print(
            f"pyro-vae: note: could not record {', '.join(modules)} in {allow_list_path()} "
            f"({exc.strerror or first_line(exc)}); give --trust {modules[0]} to commands that "
            "read this run",
            file=sys.stderr,
        )
        return
    if path is not None:
        print(
            f"pyro-vae: trusting {', '.join(modules)} for parts named in runs' config.json "
            f"from now on (recorded in {path})",
            file=sys.stderr,
        )


def import_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"
