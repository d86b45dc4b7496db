"""From configuration to parts: names, import paths and entry points to classes; classes and
keyword arguments to parts; parts to a :class:`~pyro_vae.model.vae.VAE`.

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

import pyro
import pyro.distributions as dist
import torch
from pyro.poutine.util import prune_subsample_sites
from torch import nn

from ..data.datasets import DATA_DIMS
from ..data.pixels import BINARY_SCHEMES
from ..errors import CheckpointError, ConfigError, first_line
from ..infer.settings import jit_where_valid
from ..model.decoders import DECODERS
from ..model.guides import GUIDES
from ..model.likelihoods import LIKELIHOODS
from ..model.parts import (
    BASES,
    OBSERVES,
    PART_KINDS,
    default_pixels,
    density_everywhere,
    observes,
    param_dim,
    uses_guide,
)
from ..model.priors import PRIORS
from ..model.vae import VAE
from .config import ModelConfig, RunConfig
from .names import ENTRY_POINT_GROUP, entry_points, part_names
from .part_checks import (
    check_finite_parameters,
    check_finite_values,
    check_prior_distribution,
    latent_size,
    named_part,
    part_named_in,
    vae_parts,
)
from .trust import (
    ENV_VAR,
    allow_list_path,
    in_current_directory,
    is_trusted,
    location_of,
    module_of,
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

CONTEXT_NAMES = ("latent_dim", "data_dim", "hidden", "activation", "pixels", "out_dim")
"""Keyword arguments the library offers every part's constructor (see
:mod:`pyro_vae.model.parts`); a part receives those its ``__init__`` names."""
FIXED_CONTEXT = ("latent_dim", "data_dim", "pixels", "out_dim")
"""Context a user's keyword arguments may not override (they must agree across parts)."""

_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")

PIXELS_FOR: dict[str, tuple[str, ...]] = {
    "binary": BINARY_SCHEMES,
    "unit": (*BINARY_SCHEMES, "grey"),
    "continuous": ("dequantized",),
}
"""The pixel schemes a likelihood that observes each kind of data can score."""


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
                f"{kind} {name!r}: importing module {module_name!r} failed: {_failure(exc)}"
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
                    f"{_failure(exc)}"
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
    elif location and in_current_directory(location) and module_name in trusted_modules():
        why = (
            f"{module_name!r} is vouched for by name, which does not cover a file in the "
            "current directory"
        )
    else:
        why = f"module {module_name!r} is not built in, not an installed part and not vouched for"
    if location and in_current_directory(location):
        how = f"or add the line '{module_name} {location}' to {allow_list_path()}"
    else:
        how = f"or set {ENV_VAR}={module_name}, or add it to {allow_list_path()}"
    raise ConfigError(
        f"{kind} {name!r} in {untrusted / 'config.json'} is refused: {why}, and a run's "
        f"configuration never chooses code by itself. If you trust it: add --trust "
        f"{module_name} to the command ({how})"
    )


def _failure(exc: BaseException) -> str:
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


def import_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


# ---------------------------------------------------------------------- building parts
def call_arguments(
    kind: str, cls: type, user_kwargs: Mapping[str, Any], context: Mapping[str, Any]
) -> dict[str, Any]:
    """The keyword arguments the library passes to ``cls``: the context entries its
    ``__init__`` names (all, if it takes ``**kwargs``), then the user's."""
    if cls.__init__ is nn.Module.__init__:  # no __init__ of its own: it takes nothing
        params = {}
    else:
        try:
            params = inspect.signature(cls).parameters
        except (TypeError, ValueError):
            params = {}
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    named = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    fixed = sorted(set(user_kwargs) & set(FIXED_CONTEXT) & set(context))
    if fixed:
        how = {
            "latent_dim": "set it with --latent-dim",
            "data_dim": "it is the data set's dimension",
            "pixels": "set it with --pixels",
            "out_dim": "it is the data dimension times the likelihood's param_dim",
        }
        raise ConfigError(
            f"--{kind}-kwargs may not set {fixed[0]}: the library passes it to every part "
            f"that takes it ({how[fixed[0]]})"
        )
    unknown = sorted(set(user_kwargs) - named) if not var_kw else []
    if unknown:
        accepted = sorted(named - set(CONTEXT_NAMES))
        raise ConfigError(
            f"{kind} {cls.__qualname__} takes no option {', '.join(map(repr, unknown))} "
            f"(its own options: {', '.join(accepted) or 'none'})"
        )
    args = {k: v for k, v in context.items() if var_kw or k in named}
    args.update(user_kwargs)
    missing = [
        n
        for n, p in params.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.default is p.empty
        and n not in args
    ]
    if missing:
        raise ConfigError(
            f"{kind} {cls.__qualname__} needs {', '.join(missing)}: give "
            f"--{kind}-kwargs '{{\"{missing[0]}\": ...}}'"
        )
    return args


class NotOnMeta(Exception):
    """A part that cannot be built on the meta device (it reads a value while constructed)."""


def build_part(
    kind: str,
    name: str,
    user_kwargs: Mapping[str, Any],
    context: Mapping[str, Any],
    untrusted: Path | None = None,
) -> nn.Module:
    """Construct the part of ``kind`` that ``name`` means."""
    cls = resolve_part(kind, name, untrusted)
    args = call_arguments(kind, cls, user_kwargs, context)
    try:
        part = cls(**args)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the user's constructor may raise anything, even exit
        if "meta" in str(exc) and torch.empty(0).device.type == "meta":
            raise NotOnMeta from exc
        why = _failure(exc) if isinstance(exc, SystemExit) else first_line(exc)
        raise ConfigError(
            f"{kind} {cls.__qualname__}({_kwargs_text(user_kwargs)}) could not be built: {why}"
        ) from exc
    if not isinstance(part, nn.Module):
        raise ConfigError(f"{kind} {cls.__qualname__}() did not return a torch.nn.Module")
    return part


def _kwargs_text(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def build_vae(
    cfg: ModelConfig,
    data_dim: int,
    pixels: str | None = None,
    untrusted: Path | None = None,
) -> VAE:
    """Build the VAE that ``cfg`` names, for data of dimension ``data_dim`` seen through the
    pixel scheme ``pixels`` (default: what the likelihood observes, ``default_pixels``). The
    decoder's output size is ``data_dim * likelihood.param_dim``.

    ``untrusted``: the run directory ``cfg`` was read from, if any (see the module's notes).
    """
    if pixels is None:
        pixels = default_pixels(resolve_part("likelihood", cfg.likelihood, untrusted))
    context: dict[str, Any] = {
        "latent_dim": cfg.latent_dim,
        "data_dim": data_dim,
        "hidden": list(cfg.hidden),
        "activation": cfg.activation,
        "pixels": pixels,
    }
    likelihood = build_part("likelihood", *cfg.part("likelihood"), context, untrusted)
    kind = observes(likelihood)
    if kind not in OBSERVES:
        raise ConfigError(
            f"likelihood {type(likelihood).__qualname__}: observes must be one of "
            f"{', '.join(OBSERVES)}, got {kind!r}"
        )
    if pixels not in PIXELS_FOR[kind]:
        raise ConfigError(_pixels_message(cfg.likelihood, kind, pixels))
    try:
        k = param_dim(likelihood)
    except ValueError as exc:
        raise ConfigError(f"likelihood {type(likelihood).__qualname__}: {exc}") from None
    prior = build_part("prior", *cfg.part("prior"), context, untrusted)
    guide = build_part("guide", *cfg.part("guide"), context, untrusted)
    decoder = build_part(
        "decoder", *cfg.part("decoder"), {**context, "out_dim": data_dim * k}, untrusted
    )
    try:
        return VAE(prior, guide, decoder, likelihood)
    except (ValueError, RuntimeError, NotImplementedError, AttributeError, TypeError) as exc:
        raise ConfigError(f"the parts do not fit together: {first_line(exc)}") from exc


def _pixels_message(name: str, kind: str, pixels: str) -> str:
    if kind == "continuous":
        return (
            f"the likelihood {name!r} is a density: it needs --pixels dequantized, not "
            f"{pixels!r} (a density of discrete values grows without bound)"
        )
    grey = "; grey to score grey levels with the Bernoulli formula" if name == "bernoulli" else ""
    allowed = " or ".join(PIXELS_FOR[kind])
    return f"the likelihood {name!r} needs binary pixels (--pixels {allowed}{grey}), not {pixels!r}"


# ---------------------------------------------------------------------- configurations
def resolve(
    cfg: RunConfig, data_dim: int | None = None, untrusted: Path | None = None
) -> RunConfig:
    """A validated copy of ``cfg`` with the defaults that depend on other options filled in:
    ``epochs`` from the data set, ``pixels`` from what the likelihood observes, ``jit`` from
    the objective and the parts (:func:`~pyro_vae.infer.settings.jit_where_valid`). The model is
    also built once on PyTorch's ``meta`` device (no memory), for data of dimension
    ``data_dim`` (default: the named data set's), so a part that refuses its options is
    reported before anything is trained or written."""
    cfg.validate()
    cfg = cfg.copy()
    cfg.train = cfg.train.with_epochs_for(cfg.data.dataset)
    likelihood = resolve_part("likelihood", cfg.model.likelihood, untrusted)
    if cfg.data.pixels is None:
        cfg.data.pixels = default_pixels(likelihood)
    for kind in PART_KINDS:
        resolve_part(kind, cfg.model.part(kind)[0], untrusted)
    if cfg.train.jit is None:
        builtin = all(cfg.model.part(kind)[0] in BUILTINS[kind] for kind in PART_KINDS)
        cfg.train.jit = jit_where_valid(cfg.train.elbo, builtin)
    data_dim = data_dim or DATA_DIMS.get(cfg.data.dataset, 1)
    try:
        with torch.device("meta"):
            vae = build_vae(cfg.model, data_dim, cfg.data.pixels, untrusted)
    except NotOnMeta:
        vae = None
    if vae is None or count_parameters(vae) <= CONTRACT_CHECK_PARAMETERS:
        with torch.random.fork_rng(devices=[]):  # the caller's random stream is untouched
            vae = build_vae(cfg.model, data_dim, cfg.data.pixels, untrusted)
            check_contract(vae, data_dim, cfg.data.pixels)
    check_vae(vae, cfg)
    return cfg


CONTRACT_CHECK_PARAMETERS = 50_000_000
"""Models up to this size are built once for real while a configuration is resolved, and their
parts run on a tiny batch (:func:`check_contract`); larger ones are only built on ``meta``."""


def check_contract(vae: VAE, data_dim: int, pixels: str) -> None:
    """Run the model and guide once on two made-up observations and check what the parts
    return against their contract (distributions of the right shapes; a reparameterized guide),
    so that a part that breaks it is a clear error before anything is trained or written."""
    value = 0.5 if pixels in ("grey", "dequantized") else 0.0
    x = torch.full((2, data_dim), value)
    try:
        check_finite_parameters(vae)  # a part's own code (its properties) may run already
        with torch.no_grad(), pyro.validation_enabled(False), pyro.poutine.block():
            k = latent_size(vae)
            check_prior_distribution(vae.prior, k)
            q = vae.encoder(x)
            _expect(isinstance(q, dist.Distribution), "the guide must return a distribution")
            _expect(
                tuple(q.batch_shape) == (2,) and tuple(q.event_shape) == (k,),
                f"the guide's q(z|x) for 2 images must have batch shape (2,) and event shape "
                f"({k},), not {tuple(q.batch_shape)} and {tuple(q.event_shape)} (.to_event(1)?)",
            )
            _expect(q.has_rsample, "the guide's distribution must be reparameterized (rsample)")
            guide_trace = pyro.poutine.trace(vae.guide).get_trace(x)
            model_trace = pyro.poutine.trace(
                pyro.poutine.replay(vae.model, trace=guide_trace)
            ).get_trace(x)
            model_trace = prune_subsample_sites(model_trace)
            for name, site in model_trace.nodes.items():
                if site["type"] != "sample":
                    continue
                fn = site["fn"]
                shape = tuple(fn.batch_shape)
                _expect(
                    shape == (2,),
                    f"the model's site {name!r} has batch shape {shape}, not "
                    "(2,) for 2 images: its distribution needs .to_event(1)",
                )
            z = model_trace.nodes["z"]["value"]
            _expect(tuple(z.shape) == (2, k), f"z has shape {tuple(z.shape)}, not (2, {k})")
            pz = model_trace.nodes["z"]["fn"]
            _expect(
                tuple(pz.event_shape) == (k,),
                f"p(z) at site 'z' has event shape {tuple(pz.event_shape)}, not ({k},): its "
                "distribution needs .to_event(1)",
            )
            px = model_trace.nodes["x"]["fn"]
            _expect(
                tuple(px.event_shape) == (data_dim,),
                f"the likelihood's event shape is {tuple(px.event_shape)}, not ({data_dim},)",
            )
            _check_finite_densities(vae, guide_trace, model_trace)
    except (ConfigError, KeyboardInterrupt):
        raise
    except BaseException as exc:  # a part that fails (or exits) when it runs
        who = part_named_in(vae, exc) if isinstance(exc, Exception) else None
        who = f"{who} fails" if who else "the model's parts fail"
        raise ConfigError(f"{who} on a test batch: {_failure(exc)}") from exc


def _check_finite_densities(vae: VAE, guide_trace: Any, model_trace: Any) -> None:
    """What the parts computed on the test batch is finite: the guide's draw of z, the
    decoder's output, and no log-density is NaN."""
    z = guide_trace.nodes["z"]["value"]
    check_finite_values("guide", vae.encoder, "its draw of z for a test batch", z)
    h = vae.decoder(z)
    check_finite_values("decoder", vae.decoder, "its output for the guide's z", h)
    owners = {("guide", "z"): "guide", ("model", "z"): "prior", ("model", "x"): "likelihood"}
    for which, trace in (("guide", guide_trace), ("model", model_trace)):
        trace.compute_log_prob()
        for name, site in trace.nodes.items():
            if site["type"] == "sample" and bool(torch.isnan(site["log_prob"]).any()):
                kind = owners.get((which, name), "prior")
                part = vae_parts(vae)[kind]
                raise ConfigError(
                    f"a part breaks its contract: {named_part(kind, part)}: the {which}'s "
                    f"log-density at site {name!r} is NaN on a test batch"
                )


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(f"a part breaks its contract: {message}")


def check_vae(vae: VAE, cfg: RunConfig) -> None:
    """Combinations the parts cannot support."""
    if uses_guide(vae.prior) and not density_everywhere(vae.encoder):
        raise ConfigError(
            f"--prior {cfg.model.prior} evaluates q(z|u) at any z; the guide "
            f"{type(vae.encoder).__qualname__} has no density there (density_everywhere is "
            "false; planar flows are not invertible: with --guide flow use "
            '--guide-kwargs \'{"flow_type": "iaf"}\')'
        )
    if cfg.train.elbo == "iwae-dreg" and not density_everywhere(vae.encoder):
        raise ConfigError(
            "--elbo iwae-dreg re-scores log q(z|x) at the guide's draws with its parameters "
            f"held fixed; the guide {type(vae.encoder).__qualname__} has no density there "
            "(density_everywhere is false; planar flows are not invertible: with --guide flow "
            'use --guide-kwargs \'{"flow_type": "iaf"}\', or --elbo iwae)'
        )


# ---------------------------------------------------------------------- describing
def count_parameters(module: object) -> int:
    if not isinstance(module, nn.Module):
        return 0
    return sum(p.numel() for p in module.parameters())


def describe_parts(vae: VAE, cfg: ModelConfig) -> dict[str, Any]:
    """What the model is, from its parts: for each, the name it was given, its class and import
    path, the user's keyword arguments and its parameter count; then the shared sizes."""
    objects = {
        "prior": vae.prior,
        "guide": vae.encoder,
        "likelihood": vae.likelihood,
        "decoder": vae.decoder,
    }
    parts = {}
    for kind, part in objects.items():
        name, kwargs = cfg.part(kind)
        parts[kind] = {
            "name": name,
            "class": type(part).__qualname__,
            "import_path": import_path(type(part)),
            "kwargs": dict(kwargs),
            "parameters": count_parameters(part),
        }
    return {
        "parts": parts,
        "latent_dim": cfg.latent_dim,
        "hidden": list(cfg.hidden),
        "activation": cfg.activation,
        "parameters": count_parameters(vae),
        "generative_parameters": generative_parameters(vae),
    }


def part_label(entry: Mapping[str, Any]) -> str:
    """``mog (components=3)`` or ``StudentTPrior (mypkg.priors, df=5.0)``."""
    name, cls = str(entry["name"]), str(entry["class"])
    options = _kwargs_text(entry.get("kwargs") or {}).replace("'", "")
    if is_import_path(name) or name not in _all_builtin_names():
        label = cls
        options = ", ".join(filter(None, [name.split(":")[0], options]))
    else:
        label = name
    return f"{label} ({options})" if options else label


def _all_builtin_names() -> set[str]:
    return {n for table in BUILTINS.values() for n in table}


def model_summary(description: Mapping[str, Any]) -> str:
    """One line: ``VAE (normal prior, diagonal guide, bernoulli likelihood, latent 20, hidden
    [400])`` from :func:`describe_parts`."""
    parts = description["parts"]
    words = [
        f"{part_label(parts['prior'])} prior",
        f"{part_label(parts['guide'])} guide",
        f"{part_label(parts['likelihood'])} likelihood",
    ]
    if parts["decoder"]["name"] != "mlp" or parts["decoder"]["kwargs"]:
        words.append(f"{part_label(parts['decoder'])} decoder")
    words += [f"latent {description['latent_dim']}", f"hidden {description['hidden']}"]
    return "VAE (" + ", ".join(words) + ")"


def generative_parameters(vae: VAE) -> int:
    """Parameters of p(x) itself: decoder, prior and likelihood, not the encoder, which only
    serves inference, except where the prior is built from it (the VampPrior's p(z) is the
    encoder's posteriors at pseudo-inputs)."""
    parts = [vae.decoder, vae.prior, vae.likelihood]
    if uses_guide(vae.prior):
        parts.append(vae.encoder)
    seen = {id(p): p for part in parts if isinstance(part, nn.Module) for p in part.parameters()}
    return sum(p.numel() for p in seen.values())


# ---------------------------------------------------------------------- loading weights
def load_model_state(
    vae: nn.Module, state: Any, where: str | os.PathLike, check_only: bool = False
) -> None:
    """``vae.load_state_dict(state)``, refusing a state that does not fit with the first
    mismatching parameter and both shapes (``check_only``: only that, e.g. for a model built
    on the ``meta`` device before allocating the real one)."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{where}: the model's weights are missing or not a mapping")
    expected = vae.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise CheckpointError(
                f"{where}: does not match config.json: parameter {key!r} "
                f"(shape {tuple(tensor.shape)}) is missing from the checkpoint"
            )
        saved = state[key]
        if not isinstance(saved, torch.Tensor):
            raise CheckpointError(f"{where}: parameter {key!r} is not a tensor")
        if tuple(saved.shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{where}: does not match config.json: parameter {key!r} has shape "
                f"{tuple(saved.shape)} in the checkpoint but {tuple(tensor.shape)} in the model "
                "built from config.json"
            )
        if saved.is_floating_point() and not bool(torch.isfinite(saved).all()):
            raise CheckpointError(
                f"{where}: parameter {key!r} holds NaN or infinite values: the checkpoint is "
                "corrupt or from a diverged run; it cannot be evaluated or continued"
            )
    extra = [key for key in state if key not in expected]
    if extra:
        raise CheckpointError(
            f"{where}: does not match config.json: the checkpoint has parameter {extra[0]!r} "
            "that the model built from config.json lacks"
        )
    if check_only:
        return
    try:
        vae.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: does not match config.json ({first_line(exc)})") from exc


__all__ = [
    "BUILTINS",
    "CONTEXT_NAMES",
    "ENTRY_POINT_GROUP",
    "build_part",
    "build_vae",
    "call_arguments",
    "check_vae",
    "count_parameters",
    "describe_parts",
    "entry_points",
    "generative_parameters",
    "import_path",
    "load_model_state",
    "model_summary",
    "part_names",
    "resolve",
    "resolve_part",
]
