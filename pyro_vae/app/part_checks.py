"""Checks of a user's parts beyond their shapes: finite parameters, a prior whose p(z) has the
contract's shapes, finite densities on a test batch; and which part an exception came from, so
that a part that fails (while its contract is checked, or in the middle of training) is named in
a one-line message rather than shown as a traceback through Pyro's internals."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import pyro.distributions as dist
import torch
from torch import nn

from ..errors import ConfigError, PartFailedError, PyroVAEError, first_line
from ..model.parts import Prior

PART_ATTRIBUTES = {
    "prior": "prior",
    "guide": "encoder",
    "decoder": "decoder",
    "likelihood": "likelihood",
}
"""Each kind of part and the :class:`~pyro_vae.model.vae.VAE` attribute that holds it."""

OWN_PACKAGE = __name__.split(".")[0]


def named_part(kind: str, part: object) -> str:
    """``the prior mymodule:StudentTPrior``."""
    cls = type(part)
    return f"the {kind} {cls.__module__}:{cls.__qualname__}"


def is_users(part: object) -> bool:
    """Whether ``part``'s class is defined outside pyro-vae (a user's or a plug-in's part)."""
    return type(part).__module__.split(".")[0] != OWN_PACKAGE


def vae_parts(vae: object) -> dict[str, object]:
    """The parts of a VAE by kind (those it has)."""
    return {
        kind: getattr(vae, attribute)
        for kind, attribute in PART_ATTRIBUTES.items()
        if getattr(vae, attribute, None) is not None
    }


def _frames(exc: BaseException) -> Iterator[Any]:
    """The frames of ``exc``'s traceback and of the exceptions it was raised from (their
    causes and contexts), innermost first within each."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb: TracebackType | None = exc.__traceback__
        frames = []
        while tb is not None:
            frames.append(tb.tb_frame)
            tb = tb.tb_next
        yield from reversed(frames)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]


def _source_file(part: object) -> str | None:
    try:
        return inspect.getsourcefile(type(part))
    except (TypeError, OSError):
        return None


def failing_part(parts: dict[str, object], exc: BaseException) -> tuple[str, object] | None:
    """The kind and the part whose code raised ``exc`` (the innermost frame that runs a module
    of the part, or code of the file that defines its class), or ``None``."""
    modules: dict[int, str] = {}
    files: dict[str, str] = {}
    for kind, part in parts.items():
        if isinstance(part, nn.Module):
            for module in part.modules():
                modules.setdefault(id(module), kind)
        else:
            modules.setdefault(id(part), kind)
        source = _source_file(part)
        if source is not None and is_users(part):
            files.setdefault(source, kind)
    for frame in _frames(exc):
        owner = frame.f_locals.get("self")
        kind = modules.get(id(owner)) if owner is not None else None
        kind = kind or files.get(frame.f_code.co_filename)
        if kind is not None:
            return kind, parts[kind]
    return None


def users_failing_part(vae: object, exc: BaseException) -> str | None:
    """``the prior mymodule:Class`` when a user's part raised ``exc``; ``None`` when no part
    did, or when it was one of pyro-vae's own (a bug, shown as such)."""
    found = failing_part(vae_parts(vae), exc)
    if found is None or not is_users(found[1]):
        return None
    return named_part(*found)


def part_failure(vae: object, exc: BaseException, when: str, then: str) -> PartFailedError | None:
    """The error to raise for ``exc`` when a user's part of ``vae`` raised it: it names the
    part, ``when`` (``during epoch 2``) and what to do (``then``); ``None`` otherwise."""
    if isinstance(exc, PyroVAEError):
        return None
    label = users_failing_part(vae, exc)
    if label is None:
        return None
    return PartFailedError(
        f"{label} failed {when} ({type(exc).__name__}: {first_line(exc)}); {then}"
    )


# ---------------------------------------------------------------------- contract checks
def broken(message: str) -> ConfigError:
    return ConfigError(f"a part breaks its contract: {message}")


def check_finite_parameters(vae: object) -> None:
    """Every floating-point parameter and buffer of every part is finite (a NaN there makes
    every loss NaN from the first step)."""
    for kind, part in vae_parts(vae).items():
        if not isinstance(part, nn.Module):
            continue
        for name, tensor in itertools.chain(part.named_parameters(), part.named_buffers()):
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                bad = int((~torch.isfinite(tensor)).sum())
                raise broken(
                    f"{named_part(kind, part)}: its tensor {name!r} holds {bad} NaN or infinite "
                    f"value{'s' * (bad != 1)} of {tensor.numel()}"
                )


def latent_size(vae: object) -> int:
    """The VAE's latent dimension; a prior whose p(z) has no event dimension (a duck-typed
    prior without ``.to_event(1)``) is named."""
    try:
        return int(vae.latent_dim)  # type: ignore[attr-defined]
    except (IndexError, TypeError, AttributeError, ValueError) as exc:
        prior = getattr(vae, "prior", None)
        raise broken(
            f"{named_part('prior', prior)}: the size of z cannot be read from p(z) "
            f"({type(exc).__name__}: {first_line(exc)}); p(z) needs event shape (latent_dim,): "
            "add .to_event(1) to its distribution"
        ) from None


def check_prior_distribution(prior: object, k: int) -> None:
    """p(z) = ``prior()`` has batch shape () and event shape (k,) (a prior with its own
    ``sample_site``, a hierarchical one, is checked through the model's trace instead)."""
    if isinstance(prior, Prior) and type(prior).sample_site is not Prior.sample_site:
        return
    label = named_part("prior", prior)
    p = prior()  # type: ignore[operator]
    if not isinstance(p, dist.Distribution):
        raise broken(f"{label} must return a distribution, not {type(p).__name__}")
    batch, event = tuple(p.batch_shape), tuple(p.event_shape)
    if batch == () and event == (k,):
        return
    if event == () and batch[-1:] == (k,):
        fix = "add .to_event(1) to its distribution"
    elif batch != ():
        fix = "p(z) is one distribution over z, not a batch of them"
    else:
        fix = f"z has {k} dimensions (--latent-dim)"
    raise broken(
        f"{label}: p(z) has batch shape {batch} and event shape {event}, not () and ({k},); {fix}"
    )


def check_finite_values(kind: str, part: object, what: str, value: torch.Tensor) -> None:
    """``value`` (what a part computed on a test batch) has no NaN (nor infinity, for a
    sample or a network's output)."""
    if not bool(torch.isfinite(value).all()):
        raise broken(f"{named_part(kind, part)}: {what} holds NaN or infinite values")


def part_named_in(vae: object, exc: BaseException) -> str | None:
    """``the prior mymodule:Class`` when one of ``vae``'s parts raised ``exc``."""
    found = failing_part(vae_parts(vae), exc)
    return named_part(*found) if found is not None else None
