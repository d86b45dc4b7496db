"""The part contract, checked before anything is trained or written: the model and guide run
once on a tiny batch and what each part returns is checked (distributions of the right shapes, a
reparameterized guide, finite values and densities); combinations the parts cannot support are
refused with one message each."""

from __future__ import annotations

from typing import Any

import pyro
import pyro.distributions as dist
import torch
from pyro.poutine.util import prune_subsample_sites

from ..config import combination_problems, pixel_scheme
from ..errors import ConfigError
from ..model.parts import observes
from ..model.vae import VAE
from .config import RunConfig
from .part_checks import (
    check_finite_parameters,
    check_finite_values,
    check_prior_distribution,
    latent_size,
    named_part,
    part_named_in,
    vae_parts,
)
from .part_import import failure

CONTRACT_CHECK_PARAMETERS = 50_000_000
"""Models up to this size are built once for real while a configuration is resolved, and their
parts run on a tiny batch (:func:`check_contract`); larger ones are only built on ``meta``."""


def check_contract(vae: VAE, data_dim: int, pixels: str) -> None:
    """Run the model and guide once on two made-up observations and check what the parts
    return against their contract (distributions of the right shapes; a reparameterized guide),
    so that a part that breaks it is a clear error before anything is trained or written."""
    value = 0.0 if pixel_scheme(pixels).binary else 0.5  # a value the scheme's tensors hold
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
        raise ConfigError(f"{who} on a test batch: {failure(exc)}") from exc


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
    """Combinations the parts, the objective and the pixels cannot support (one message each,
    :func:`~pyro_vae.config.combination_problems`)."""
    problems = combination_problems(
        prior_name=cfg.model.prior,
        prior=vae.prior,
        guide=vae.encoder,
        elbo=cfg.train.elbo,
        likelihood_name=cfg.model.likelihood,
        observes=observes(vae.likelihood),
        pixels=cfg.data.pixels,
    )
    if problems:
        raise ConfigError(problems[0])
