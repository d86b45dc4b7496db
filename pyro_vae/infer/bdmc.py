"""Bidirectional Monte Carlo (BDMC, Grosse et al. 2015): on data simulated from the model,
forward AIS (a stochastic lower bound on log p(x)) and reverse AIS from the latent z* that
generated each point (a stochastic upper bound).

What the sandwich guarantees, and what it does not: each bound holds *in expectation* over the
Monte Carlo draws (E[lower] <= log p(x) <= E[upper]); a single run's bounds carry Monte Carlo
noise of their own, so on one point they can cross, or miss the truth. Per point BDMC reports
both bounds with their Monte Carlo errors and the gap as an interval (gap +- 2 MC errors); over
many points the *average* bounds sandwich the average log p(x) up to the standard error of
their means, and the average gap bounds how far AIS at those settings is off on average.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from pyro import poutine

from ..rng import derived_seed, seeded_rng, stream_key
from ..store.evaluation import BDMCEvaluation
from .ais import AISEstimate, _plate_nesting, log_marginal_ais
from .annealed_target import AnnealedTarget
from .marginal import MarginalEstimate, _finite, log_marginal, mean_and_se

INTERVAL_Z = 2.0
"""Per-point gap intervals: gap +- INTERVAL_Z Monte Carlo errors."""


@dataclass
class BDMCResult:
    """Bidirectional Monte Carlo on data simulated from the model: per point, forward AIS's
    stochastic lower bound, reverse AIS's stochastic upper bound (from the latent z* that
    generated it), and, when asked, importance sampling with the guide on the same points.
    ``data``: the simulated points, ``latent``: their z* (``[N, D]``, AIS's layout), so other
    estimators can be scored on the same data."""

    forward: AISEstimate
    reverse: AISEstimate
    importance: MarginalEstimate | None = None
    data: torch.Tensor | None = None
    latent: torch.Tensor | None = None

    @property
    def gap(self) -> torch.Tensor:
        """Upper minus lower bound per point (it can be negative: both bounds are noisy)."""
        return self.reverse.log_px - self.forward.log_px

    @property
    def gap_mc_se(self) -> torch.Tensor:
        """Each point's gap's Monte Carlo error, from both runs' (independent) errors."""
        return torch.hypot(self.forward.mc_se, self.reverse.mc_se)

    def gap_interval(self, z: float = INTERVAL_Z) -> tuple[torch.Tensor, torch.Tensor]:
        """Per point, gap -+ z Monte Carlo errors: where the gap of exact (infinite-chain)
        runs at these settings lies, where both runs are flagged reliable."""
        half = z * self.gap_mc_se
        return self.gap - half, self.gap + half

    def summary(self) -> BDMCEvaluation:
        """Averages over points: the lower and upper bounds and the gap, each with its
        standard error over points (``*_se``) and its Monte Carlo error (``*_mc_se``), how many
        points' gap intervals lie wholly below 0, and each run's reliability; the record
        ``evaluation.json`` keeps, without its header."""

        def mean_se(t: torch.Tensor) -> tuple[float, float | None]:
            mean, se = mean_and_se(t)
            return mean, _finite(se)

        n = len(self.gap)
        lower, lower_se = mean_se(self.forward.log_px)
        upper, upper_se = mean_se(self.reverse.log_px)
        gap, gap_se = mean_se(self.gap)
        low, high = self.gap_interval()
        f, r = self.forward.summary(), self.reverse.summary()
        is_log_px = below = below_se = None  # importance sampling on the same points
        if self.importance is not None:
            is_log_px = mean_se(self.importance.log_px)[0]
            below, below_se = mean_se(self.forward.log_px - self.importance.log_px)
        return BDMCEvaluation(
            method="bdmc",
            num_examples=n,
            num_steps=self.forward.num_steps,
            num_chains=self.forward.num_chains,
            num_leapfrog=self.forward.num_leapfrog,
            start=self.forward.start,
            lower=lower,
            lower_se=lower_se,
            lower_mc_se=f.log_px_mc_se,
            upper=upper,
            upper_se=upper_se,
            upper_mc_se=r.log_px_mc_se,
            gap=gap,
            gap_se=gap_se,
            gap_mc_se=_finite(self.gap_mc_se.double().pow(2).sum().sqrt().item() / n),
            gap_interval_below_zero=int((high < 0).sum()),
            gap_interval_median_width=(high - low).double().median().item(),
            reliable_forward=f.reliable,
            reliable_reverse=r.reliable,
            unreliable_forward=f.unreliable,
            unreliable_reverse=r.unreliable,
            acceptance_forward=f.acceptance_mean,
            acceptance_reverse=r.acceptance_mean,
            is_num_samples=None if self.importance is None else self.importance.num_samples,
            is_log_px=is_log_px,
            lower_minus_is=below,
            lower_minus_is_se=below_se,
        )


def _observed_sites(trace) -> list[str]:
    """The sites the model observes (``pyro.deterministic`` sites are not observations)."""
    return [
        name
        for name, site in trace.nodes.items()
        if site["type"] == "sample"
        and site["infer"].get("was_observed")
        and not site["infer"].get("_deterministic")
    ]


def simulate(
    model: Callable,
    guide: Callable,
    x_like: torch.Tensor,
    *args,
    start: str = "guide",
    data_plate: str = "data",
    max_plate_nesting: int | None = None,
    seed: int = 0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw z* ~ p(z), x ~ p(x | z*) for ``len(x_like)`` data points: the simulated data (shaped
    like ``x_like``) and z* flattened to ``[N, D]`` in the layout AIS uses. The model must have
    one observed site, whose value is its input x (``poutine.uncondition`` samples it;
    ``pyro.deterministic`` sites are not observations)."""
    if max_plate_nesting is None:
        max_plate_nesting = _plate_nesting(model, guide, x_like, seed, args, kwargs)
    target = AnnealedTarget(model, guide, 1, start, args, kwargs, data_plate, max_plate_nesting)
    with seeded_rng(derived_seed(seed, stream_key("bdmc/simulate"))), torch.no_grad():
        target.initial(x_like[:1])  # the latent layout
        trace = target._trace(poutine.uncondition(model), x_like, None)
    observed = _observed_sites(trace)
    if len(observed) != 1:
        raise ValueError(
            f"simulating data needs a model with exactly one observed site, found {observed}"
        )
    value = trace.nodes[observed[0]]["value"].detach()
    if value.numel() != x_like.numel():
        raise ValueError(
            f"the observed site {observed[0]!r} holds {value.numel()} values for "
            f"{x_like.numel()} in x: BDMC needs the observed site's value to be x itself"
        )
    latent = {s.name: trace.nodes[s.name]["value"].detach() for s in target.sites}
    return value.reshape(x_like.shape).to(x_like.dtype), target.flatten(latent)[0]


def bdmc(
    model: Callable,
    guide: Callable,
    x_like: torch.Tensor,
    *args,
    num_steps: int = 100,
    num_chains: int = 8,
    num_leapfrog: int = 5,
    start: str = "guide",
    num_samples: int | None = 1000,
    data_plate: str = "data",
    max_plate_nesting: int | None = None,
    seed: int = 0,
    progress: bool = False,
    **kwargs,
) -> BDMCResult:
    """The BDMC sandwich on ``len(x_like)`` points simulated from the model (Grosse et al.
    2015): forward AIS (lower bound) and reverse AIS from the generating z* (upper bound) on
    the same schedule and frozen step sizes, and importance sampling with ``num_samples``
    guide draws on the same points (``None``: skip it). ``x_like`` only gives the data's
    shape and type; the simulated data come back in the result's ``data``."""
    common = dict(data_plate=data_plate, max_plate_nesting=max_plate_nesting, seed=seed)
    x_sim, z_star = simulate(model, guide, x_like, *args, start=start, **common, **kwargs)
    settings = dict(
        num_steps=num_steps,
        num_chains=num_chains,
        num_leapfrog=num_leapfrog,
        start=start,
        progress=progress,
        **common,
    )
    forward = log_marginal_ais(model, guide, x_sim, *args, **settings, **kwargs)
    reverse = log_marginal_ais(model, guide, x_sim, *args, init=z_star, **settings, **kwargs)
    importance = None
    if num_samples:
        importance = log_marginal(
            model, guide, x_sim, num_samples, *args, progress=progress, **common, **kwargs
        )
    return BDMCResult(forward, reverse, importance, x_sim, z_star)
