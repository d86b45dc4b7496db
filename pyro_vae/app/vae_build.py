"""From configuration to a :class:`~pyro_vae.model.vae.VAE`: each part's class
(:mod:`.part_import`) called with the keyword arguments it takes; a configuration resolved once
(defaults that depend on other options filled in, the model built on the ``meta`` device and its
contract checked); saved weights loaded with every mismatch named."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import jit_default, pixels_problem
from ..config.datasets import data_pixels, image_shape
from ..config.pixels import schemes_for
from ..data.datasets import DATA_DIMS
from ..errors import CheckpointError, ConfigError, first_line
from ..model.conv import NeedsImages
from ..model.likelihoods import LIKELIHOODS
from ..model.parts import (
    INPUT_TRANSFORMS,
    OBSERVES,
    PART_KINDS,
    default_pixels,
    observes,
    param_dim,
)
from ..model.vae import VAE
from .config import ModelConfig, ResolvedConfig, RunConfig
from .contract import check_contract, check_vae
from .describe import count_parameters, kwargs_text
from .part_import import failure, resolve_part
from .run_tensors import check_weights

CONTEXT_NAMES = (
    "latent_dim",
    "data_dim",
    "hidden",
    "activation",
    "pixels",
    "out_dim",
    "image_shape",
)
"""Keyword arguments the library offers every part's constructor (see
:mod:`pyro_vae.model.parts`); a part receives those its ``__init__`` names."""
FIXED_CONTEXT = ("latent_dim", "data_dim", "pixels", "out_dim", "image_shape")
"""Context a user's keyword arguments may not override (they must agree across parts)."""

PIXELS_FOR: dict[str, tuple[str, ...]] = {kind: schemes_for(kind) for kind in OBSERVES}
"""The pixel schemes a likelihood that observes each kind of data can score (each scheme's
``scored_by``, :mod:`pyro_vae.config.pixels`)."""


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
            "image_shape": "it is the data set's",
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
    except NeedsImages as exc:  # the data, not the part, is at fault: say what to use instead
        raise ConfigError(str(exc)) from exc
    except BaseException as exc:  # the user's constructor may raise anything, even exit
        if "meta" in str(exc) and torch.empty(0).device.type == "meta":
            raise NotOnMeta from exc
        why = failure(exc) if isinstance(exc, SystemExit) else first_line(exc)
        raise ConfigError(
            f"{kind} {cls.__qualname__}({kwargs_text(user_kwargs)}) could not be built: {why}"
        ) from exc
    if not isinstance(part, nn.Module):
        raise ConfigError(f"{kind} {cls.__qualname__}() did not return a torch.nn.Module")
    return part


def build_vae(
    cfg: ModelConfig,
    data_dim: int,
    pixels: str | None = None,
    untrusted: Path | None = None,
    image_shape: tuple[int, ...] = (),
) -> VAE:
    """Build the VAE that ``cfg`` names, for data of dimension ``data_dim`` seen through the
    pixel scheme ``pixels`` (default: what the likelihood observes, ``default_pixels``). The
    decoder's output size is ``data_dim * likelihood.param_dim``.

    ``untrusted``: the run directory ``cfg`` was read from, if any (see the module's notes).
    ``image_shape``: one example's ``(C, H, W)`` for image data (:func:`data_image_shape`),
    which the convolutional parts need; ``()`` for data that are not images.
    """
    if pixels is None:
        pixels = default_pixels(resolve_part("likelihood", cfg.likelihood, untrusted))
    context: dict[str, Any] = {
        "latent_dim": cfg.latent_dim,
        "data_dim": data_dim,
        "hidden": list(cfg.hidden),
        "activation": cfg.activation,
        "pixels": pixels,
        "image_shape": tuple(image_shape) or None,
    }
    likelihood = build_part("likelihood", *cfg.part("likelihood"), context, untrusted)
    kind = observes(likelihood)
    if kind not in OBSERVES:
        raise ConfigError(
            f"likelihood {type(likelihood).__qualname__}: observes must be one of "
            f"{', '.join(OBSERVES)}, got {kind!r}"
        )
    problem = pixels_problem(cfg.likelihood, kind, pixels)
    if problem:
        raise ConfigError(problem)
    try:
        k = param_dim(likelihood)
    except ValueError as exc:
        raise ConfigError(f"likelihood {type(likelihood).__qualname__}: {exc}") from None
    prior = build_part("prior", *cfg.part("prior"), context, untrusted)
    guide = build_part("guide", *cfg.part("guide"), context, untrusted)
    set_encoder_input(guide, encoder_input_for(cfg.encoder_input, kind))
    decoder = build_part(
        "decoder", *cfg.part("decoder"), {**context, "out_dim": data_dim * k}, untrusted
    )
    try:
        return VAE(prior, guide, decoder, likelihood)
    except (ValueError, RuntimeError, NotImplementedError, AttributeError, TypeError) as exc:
        raise ConfigError(f"the parts do not fit together: {first_line(exc)}") from exc


def data_image_shape(cfg: RunConfig) -> tuple[int, ...]:
    """One example's ``(C, H, W)`` for the run's data if they are images, else ``()``: a named
    data set's, or the recorded shape of a data file
    (:func:`~pyro_vae.config.datasets.image_shape`)."""
    d = cfg.data
    return image_shape(d.dataset, list(d.data_shape), d.data_sha256)


def settle(cfg: RunConfig, untrusted: Path | None = None) -> RunConfig:
    """A validated copy of ``cfg`` with the defaults that depend on other options filled in:
    ``epochs`` from the data set, ``pixels`` from what the likelihood observes, ``jit`` from
    the objective and the parts' modules (:func:`~pyro_vae.config.jit_default`); every part's class
    found (``untrusted``: the run directory ``cfg`` was read from, see :mod:`.part_import`).
    Nothing is built."""
    cfg.validate()
    cfg = cfg.copy()
    cfg.train = cfg.train.with_epochs_for(cfg.data.dataset)
    likelihood = resolve_part("likelihood", cfg.model.likelihood, untrusted)
    cfg.data.pixels = pixels_for_data(cfg, likelihood)
    cfg.model.encoder_input = encoder_input_for(cfg.model.encoder_input, observes(likelihood))
    classes = [resolve_part(kind, cfg.model.part(kind)[0], untrusted) for kind in PART_KINDS]
    if cfg.train.jit is None:
        modules = [getattr(cls, "__module__", None) or "" for cls in classes]
        cfg.train.jit = jit_default(cfg.train.elbo, modules)
    return cfg


def encoder_input_for(given: str | None, observed: str) -> str:
    """``--encoder-input``, or its default: ``log1p`` when the likelihood observes counts (as
    scVI feeds log(1 + x) to its encoder), else ``as-is``. A run's ``config.json`` that records
    none reads as ``as-is`` (:meth:`~.config.RunConfig.load`): its model is what it was."""
    if given is not None:
        return given
    return "log1p" if observed == "counts" else "as-is"


def set_encoder_input(guide: nn.Module, transform: str) -> None:
    """Tell ``guide`` what its network sees of x (:attr:`~pyro_vae.model.parts.Guide.
    input_transform`); a guide that cannot honour ``log1p`` (no ``encoder_input``) is refused."""
    if transform not in INPUT_TRANSFORMS:
        raise ConfigError(f"encoder_input must be one of {', '.join(INPUT_TRANSFORMS)}")
    if not callable(getattr(guide, "encoder_input", None)):
        if transform == "as-is":
            return
        raise ConfigError(
            f"guide {type(guide).__qualname__} cannot see log(1 + x) (--encoder-input log1p): "
            "it is not a pyro_vae.model.parts.Guide; give --encoder-input as-is"
        )
    guide.input_transform = transform


def pixels_for_data(cfg: RunConfig, likelihood: type) -> str:
    """``--pixels``, or the scheme the likelihood prefers, checked against what the data are
    (``data_kind``: a data file's; see :func:`~pyro_vae.config.datasets.data_pixels`)."""
    return data_pixels(
        cfg.data.data_kind,
        dataset=cfg.data.dataset,
        likelihood=cfg.model.likelihood,
        observes=observes(likelihood),
        pixels=cfg.data.pixels,
        preferred=default_pixels(likelihood),
        alternatives=likelihoods_by_observed(),
    )


def likelihoods_by_observed() -> dict[str, tuple[str, ...]]:
    """The built-in likelihoods' names by what they observe."""
    found: dict[str, tuple[str, ...]] = {}
    for name, cls in LIKELIHOODS.items():
        found[observes(cls)] = (*found.get(observes(cls), ()), name)
    return found


def resolve_config(
    cfg: RunConfig, data_dim: int | None = None, untrusted: Path | None = None
) -> tuple[ResolvedConfig, VAE | None]:
    """``cfg`` resolved once (:func:`settle`), and the model it names built on PyTorch's
    ``meta`` device (no memory) for data of dimension ``data_dim`` (default: the named data
    set's) and checked against the options (:func:`~.contract.check_vae`), so that a part that
    refuses its options is reported before anything is allocated, trained or written. Returns
    the frozen configuration and the meta model; ``None`` for a part that cannot be built on
    ``meta`` (it reads values while built), which is then built for real, checked and let go."""
    return check_on_meta(settle(cfg, untrusted), data_dim, untrusted)


def check_on_meta(
    settled: RunConfig, data_dim: int | None = None, untrusted: Path | None = None
) -> tuple[ResolvedConfig, VAE | None]:
    """The second half of :func:`resolve_config`, for a configuration :func:`settle` returned."""
    data_dim = data_dim or DATA_DIMS.get(settled.data.dataset, 1)
    try:
        with torch.device("meta"):
            vae: VAE | None = build_vae(
                settled.model, data_dim, settled.data.pixels, untrusted, data_image_shape(settled)
            )
    except NotOnMeta:
        vae = None
    if vae is None:
        real = build_checked(settled, data_dim, untrusted)
        check_vae(real, settled)
    else:
        check_vae(vae, settled)
    return ResolvedConfig(settled), vae


def build_checked(cfg: RunConfig, data_dim: int, untrusted: Path | None = None) -> VAE:
    """The model of ``cfg`` built for real (from the caller's random stream, which it advances
    as the build does), its parts run once on a tiny batch against their contract
    (:func:`~.contract.check_contract`, for models up to :data:`CONTRACT_CHECK_PARAMETERS`),
    which leaves the model, its buffers and the random stream as the build left them."""
    vae = build_vae(cfg.model, data_dim, cfg.data.pixels, untrusted, data_image_shape(cfg))
    if count_parameters(vae) <= CONTRACT_CHECK_PARAMETERS:
        kept = {k: v.detach().clone() for k, v in vae.state_dict().items()}
        with torch.random.fork_rng(devices=[]):  # the caller's random stream is untouched
            check_contract(vae, data_dim, cfg.data.pixels)
        vae.load_state_dict(kept)
    return vae


def resolve(
    cfg: RunConfig, data_dim: int | None = None, untrusted: Path | None = None
) -> ResolvedConfig:
    """``cfg`` resolved (:func:`resolve_config`) and its model's parts checked against their
    contract on a tiny batch (:func:`build_checked`, from a forked random stream): for callers
    that build the model themselves. The jobs call :func:`~pyro_vae.jobs.prepare.prepare`,
    which builds the model once on ``meta`` and once for real."""
    resolved, vae = resolve_config(cfg, data_dim, untrusted)
    if vae is not None and count_parameters(vae) <= CONTRACT_CHECK_PARAMETERS:
        data_dim = data_dim or DATA_DIMS.get(resolved.data.dataset, 1)
        with torch.random.fork_rng(devices=[]):
            build_checked(resolved, data_dim, untrusted)
    return resolved


CONTRACT_CHECK_PARAMETERS = 50_000_000
"""Models up to this size are built once for real while a configuration is resolved, and their
parts run on a tiny batch (:func:`~.contract.check_contract`); larger ones are only built on
``meta``."""


def load_model_state(
    vae: nn.Module, state: Any, where: str | os.PathLike, check_only: bool = False
) -> None:
    """``vae.load_state_dict(state)``, refusing a state that does not fit with the first
    mismatching parameter and both shapes (``check_only``: only that, e.g. for a model built
    on the ``meta`` device before allocating the real one)."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{where}: the model's weights are missing or not a mapping")
    check_weights(vae, state, Path(where))  # dense, of each parameter's dtype: never converted
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
