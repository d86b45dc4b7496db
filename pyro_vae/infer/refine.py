"""Per-data-point (non-amortized) refinement of the guide, and the inference gaps it measures.

The encoder gives each data point x_n the parameters lambda_n = f_phi(x_n) of its q(z | x_n;
lambda_n). Refinement forgets the sharing: starting from lambda_n it maximizes each point's own
ELBO over lambda_n alone,

    ELBO*(x_n) ~= max_lambda E_{q(z; lambda)}[log p(x_n, z) - log q(z; lambda)],

by stochastic gradient ascent (Adam, reparameterized draws; Pyro's ``Trace_ELBO`` per point),
vectorized over points: one parameter tensor ``[N, P]`` whose rows are optimized together but
independently (the loss is a sum over points and Adam acts elementwise, so each row follows the
path it would follow alone). Then (Cremer, Li & Duvenaud 2018)

    log p(x) - ELBO(x) = [log p(x) - ELBO*(x)] + [ELBO*(x) - ELBO(x)]
                          approximation gap      amortization gap

the first the price of the guide's family, the second of sharing one encoder across points.

Refinable guides expose their per-point parameters: ``local_parameters(x)`` and
``family(params)`` (:class:`pyro_vae.model.parts.Guide`); the built-in diagonal and
full-covariance Gaussians (mean and scale factors) and the flow guide (its base Gaussian and
the flows' context; the flows' own weights stay shared) do. A hierarchical prior's own guide
sites (``extra_sites``) keep their amortized conditionals given the refined z.

The gradient is the path derivative ("sticking the landing", Roeder et al. 2017: log q scored
with its parameters held fixed) where q's density is known at any z, so that its noise vanishes
at the exact posterior; a planar flow's q, known only at its own draws, takes the plain
reparameterized gradient. A learning rate that decays to zero (cosine) lets the noisy gradients
settle; the refined and
amortized ELBOs are then estimated afresh from ``eval_samples`` draws each, with their Monte
Carlo standard errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro.infer.util import is_validation_enabled
from tqdm.auto import tqdm

from ..model.parts import refinable
from ..rng import derived_seed, seeded_rng, stream_key
from .marginal import (
    MarginalEstimate,
    guess_max_plate_nesting,
    log_importance_weights,
    log_marginal,
)

SUPPORTED = "the built-in diagonal, full and flow guides"
"""The guides :func:`refine` supports, in words (and users' guides that expose
``local_parameters`` and ``family``)."""

ExtraSites = Callable[[torch.Tensor, torch.Tensor], None]
"""``extra(z, x)``: the guide's sample statements after z (a hierarchical prior's own)."""


def refine_problem(encoder: object) -> str | None:
    """Why ``encoder``'s q cannot be refined per point (``None``: it can)."""
    if refinable(encoder):
        return None
    return (
        f"per-point refinement needs the guide's per-point parameters: {SUPPORTED} expose them; "
        f"{type(encoder).__name__} has no local_parameters(x) and family(params) "
        "(see pyro_vae.model.parts.Guide)"
    )


class _StickingTheLanding(dist.TorchDistribution):
    """Draws (reparameterized) from ``live``, scores by ``fixed`` (the same q, its parameters
    detached): the path-derivative ELBO gradient of Roeder et al. (2017), whose variance
    vanishes as q reaches the exact posterior, so refinement can get there."""

    has_rsample = True
    arg_constraints: dict = {}

    def __init__(self, live: dist.Distribution, fixed: dist.Distribution) -> None:
        self.live, self.fixed = live, fixed
        super().__init__(live.batch_shape, live.event_shape, validate_args=False)

    @property
    def support(self):
        return self.live.support

    def expand(self, batch_shape, _instance=None) -> _StickingTheLanding:
        return _StickingTheLanding(self.live.expand(batch_shape), self.fixed.expand(batch_shape))

    def rsample(self, sample_shape: torch.Size | tuple = ()) -> torch.Tensor:
        return self.live.rsample(sample_shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return self.fixed.log_prob(value)


def refined_guide(
    family: Callable[[torch.Tensor], dist.Distribution],
    params: torch.Tensor,
    site: str = "z",
    extra_sites: ExtraSites | None = None,
    data_plate: str = "data",
) -> Callable:
    """A Pyro guide drawing site ``site`` of the i-th row of its ``x`` from
    ``family(params[i])``: q refined for exactly those points (then ``extra_sites``)."""

    def guide(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if len(x) != len(params):
            raise ValueError(f"refined for {len(params)} points, called on {len(x)}")
        with pyro.plate(data_plate, len(x), dim=-1):
            z = pyro.sample(site, family(params))
            if extra_sites is not None:
                extra_sites(z, x)
        return z

    return guide


@dataclass
class Refined:
    """Per-point results of :func:`refine`: CPU tensors ``[N]`` and ``params`` ``[N, P]`` (on
    the data's device).

    ``elbo``/``elbo_se``: the refined ELBO* and its Monte Carlo standard error;
    ``amortized_elbo``/``amortized_elbo_se``: the encoder's own ELBO, estimated the same way."""

    params: torch.Tensor
    elbo: torch.Tensor
    elbo_se: torch.Tensor
    amortized_elbo: torch.Tensor
    amortized_elbo_se: torch.Tensor
    steps: int
    family: Callable[[torch.Tensor], dist.Distribution]

    def distribution(self) -> dist.Distribution:
        """The refined q of every point (batch shape ``[N]``)."""
        return self.family(self.params)

    @property
    def amortization_gap(self) -> torch.Tensor:
        """ELBO* - ELBO per point."""
        return self.elbo - self.amortized_elbo

    @property
    def amortization_gap_se(self) -> torch.Tensor:
        """Its Monte Carlo standard error (independent draws)."""
        return torch.hypot(self.elbo_se, self.amortized_elbo_se)


@torch.no_grad()
def _elbo_and_se(
    log_w: Callable[[int], torch.Tensor], num_samples: int, chunk: int, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard error over ``num_samples`` draws of ``log_w(k)`` (``[k, n]``); NaN
    where there are too few draws (none: not estimated)."""
    nan = torch.full((n,), math.nan, dtype=torch.float64)
    if num_samples == 0:
        return nan, nan.clone()
    pieces = [log_w(min(chunk, num_samples - k)) for k in range(0, num_samples, chunk)]
    values = torch.cat(pieces).double().cpu()
    se = values.std(0) / math.sqrt(num_samples) if num_samples > 1 else nan
    return values.mean(0), se


def _optimize(
    loss_of: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    steps: int,
    lr: float,
    tick: Callable[[], None],
) -> torch.Tensor:
    """Adam from ``start`` for ``steps`` steps on ``loss_of(params)`` (the learning rate
    decays to 0 on a cosine); only ``params`` are differentiated."""
    params = start.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([params], lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
    validate = is_validation_enabled()
    for step in range(steps):
        with pyro.validation_enabled(validate and step == 0):
            loss = loss_of(params)
        if not torch.isfinite(loss):
            raise ValueError(
                f"per-point refinement diverged at step {step + 1} (a non-finite ELBO); "
                "lower its learning rate"
            )
        (params.grad,) = torch.autograd.grad(loss, [params])
        optimizer.step()
        schedule.step()
        tick()
    return params.detach()


def refine(
    model: Callable,
    encoder: Callable,
    x: torch.Tensor,
    *args,
    steps: int = 100,
    particles: int = 8,
    lr: float = 0.01,
    eval_samples: int = 1000,
    batch_size: int | None = None,
    max_rows: int = 16384,
    site: str = "z",
    extra_sites: ExtraSites | None = None,
    data_plate: str = "data",
    max_plate_nesting: int | None = None,
    seed: int = 0,
    index_offset: int = 0,
    progress: bool = False,
    **kwargs,
) -> Refined:
    """Refine q per point of ``x`` for ``steps`` Adam steps on its own ELBO (``particles``
    reparameterized draws a step) from the encoder's output; then estimate the refined and the
    amortized ELBO of each point from ``eval_samples`` draws each.

    Args:
        model: the Pyro model, called as ``model(x_batch, *args, **kwargs)``, its latent site
            ``site`` in ``pyro.plate(data_plate, len(x_batch))``.
        encoder: the guide part (:class:`~pyro_vae.model.parts.Guide`) with
            ``local_parameters`` and ``family``.
        extra_sites: the guide's statements after z (a hierarchical prior's own), kept
            amortized.
        seed, index_offset: the draws of the batch starting at point g (``x[0]`` being point
            ``index_offset``) are seeded by ``(seed, g)``, as in
            :func:`~pyro_vae.infer.marginal.log_marginal`.
    """
    problem = refine_problem(encoder)
    if problem:
        raise ValueError(problem)
    if steps < 0 or particles < 1 or eval_samples < 0 or not lr > 0:
        raise ValueError("steps >= 0, particles >= 1, eval_samples >= 0 and lr > 0 are needed")
    if len(x) == 0:
        raise ValueError("x holds no data points")
    n = len(x)
    batch_size = min(n, batch_size or 100)
    chunk = max(1, max_rows // batch_size)
    starts = range(0, n, batch_size)
    out: dict[str, list[torch.Tensor]] = {k: [] for k in ("p", "e", "es", "a", "as")}

    def program(params: torch.Tensor) -> Callable:
        return refined_guide(encoder.family, params, site, extra_sites, data_plate)

    def training_program(params: torch.Tensor) -> Callable:
        if not getattr(encoder, "density_everywhere", True):  # q known at its own draws only
            return program(params)

        def family(p: torch.Tensor) -> dist.Distribution:
            return _StickingTheLanding(encoder.family(p), encoder.family(p.detach()))

        return refined_guide(family, params, site, extra_sites, data_plate)

    with seeded_rng(seed):
        if max_plate_nesting is None:
            with torch.no_grad():
                start0 = encoder.local_parameters(x[:batch_size])
                max_plate_nesting = guess_max_plate_nesting(
                    model, program(start0), x[:batch_size], *args, **kwargs
                )

        def log_w(guide: Callable, xb: torch.Tensor, k: int) -> torch.Tensor:
            return log_importance_weights(
                model,
                guide,
                xb,
                k,
                *args,
                data_plate=data_plate,
                max_plate_nesting=max_plate_nesting,
                **kwargs,
            )

        bar = tqdm(
            total=len(starts) * steps,
            desc=f"refining q per point, {steps} steps",
            unit="step",
            disable=not progress,
            mininterval=0.5,
            dynamic_ncols=True,
        )
        with bar:
            for s in starts:
                xb = x[s : s + batch_size]
                torch.manual_seed(derived_seed(seed, index_offset + s, stream_key("refine")))
                with torch.no_grad():
                    start = encoder.local_parameters(xb)

                def loss_of(params: torch.Tensor, xb: torch.Tensor = xb) -> torch.Tensor:
                    return -log_w(training_program(params), xb, particles).mean(0).sum()

                params = _optimize(loss_of, start, steps, lr, lambda: bar.update(1))
                for p, keys in ((params, ("e", "es")), (start, ("a", "as"))):
                    guide = program(p)
                    mean, se = _elbo_and_se(
                        lambda k, g=guide, xb=xb: log_w(g, xb, k), eval_samples, chunk, len(xb)
                    )
                    out[keys[0]].append(mean)
                    out[keys[1]].append(se)
                out["p"].append(params)
    return Refined(
        params=torch.cat(out["p"]),
        elbo=torch.cat(out["e"]),
        elbo_se=torch.cat(out["es"]),
        amortized_elbo=torch.cat(out["a"]),
        amortized_elbo_se=torch.cat(out["as"]),
        steps=steps,
        family=encoder.family,
    )


def refined_log_marginal(
    model: Callable,
    encoder: Callable,
    x: torch.Tensor,
    num_samples: int,
    *args,
    steps: int = 100,
    particles: int = 8,
    lr: float = 0.01,
    batch_size: int | None = None,
    site: str = "z",
    extra_sites: ExtraSites | None = None,
    seed: int = 0,
    index_offset: int = 0,
    progress: bool = False,
    **kwargs,
) -> MarginalEstimate:
    """Importance sampling of log p(x) with the refined q of each point as its proposal: for
    each batch of points, :func:`refine` for ``steps`` steps, then
    :func:`~pyro_vae.infer.marginal.log_marginal` with K = ``num_samples`` draws of it (the
    same seeds as plain importance sampling of the same batches)."""
    n = len(x)
    if n == 0:
        raise ValueError("x holds no data points")
    batch_size = min(n, batch_size or 100)
    pieces = []
    for s in range(0, n, batch_size):
        xb = x[s : s + batch_size]
        refined = refine(
            model,
            encoder,
            xb,
            *args,
            steps=steps,
            particles=particles,
            lr=lr,
            eval_samples=0,
            site=site,
            extra_sites=extra_sites,
            seed=seed,
            index_offset=index_offset + s,
            progress=progress,
            **kwargs,
        )
        guide = refined_guide(encoder.family, refined.params, site, extra_sites)
        pieces.append(
            log_marginal(
                model,
                guide,
                xb,
                num_samples,
                *args,
                batch_size=len(xb),
                seed=seed,
                index_offset=index_offset + s,
                **kwargs,
            )
        )
    return MarginalEstimate(
        **{
            k: torch.cat([getattr(p, k) for p in pieces]) for k in ("log_px", "elbo", "ess", "khat")
        },
        num_samples=num_samples,
    )


__all__ = [
    "SUPPORTED",
    "Refined",
    "refine",
    "refine_problem",
    "refined_guide",
    "refined_log_marginal",
]
