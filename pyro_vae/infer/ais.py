"""log p(x) by annealed importance sampling (AIS) with HMC transitions, for any Pyro model/guide
pair whose latent sites lie in the data plate (BDMC, its sandwich, is in :mod:`.bdmc`).

AIS (Neal 2001) moves C chains per data point through the geometric path

    f_beta(z) = log pi_0(z) + beta * [log p(x, z) - log pi_0(z)],   0 = beta_0 < ... < beta_T = 1,

from pi_0 = q(z|x) (the guide, default) or pi_0 = p(z) (the prior) to the unnormalized
posterior p(x, z). Each chain accumulates the log-weight

    log w = sum_t (beta_t - beta_{t-1}) [log p(x, z_{t-1}) - log pi_0(z_{t-1})],

where z_t follows from z_{t-1} by one HMC transition that leaves pi_{beta_t} invariant. With
the transitions fixed before the run, E[w] = p(x): log p^(x) = log mean_c w_c is a stochastic
lower bound (Jensen: E[log p^(x)] <= log p(x)) that becomes exact as T grows, and exact at any T
when pi_0 is the exact posterior. The schedule is the sigmoid of Grosse et al. (2015); HMC
(velocity Verlet, L leapfrog steps, unit mass) uses per-point step sizes tuned towards
acceptance 0.65 (Wu et al. 2017) in a separate pilot run and then frozen (:mod:`.hmc`).

Run backwards (beta from 1 to 0) from an exact posterior sample, the same sum estimates
1 / p(x): -log mean_c w_c is a stochastic *upper* bound on log p(x) (BDMC, :mod:`.bdmc`).

Reliability: with few chains the weights' spread says little about their tail. Each point's
estimate is flagged reliable when its effective sample size over chains is at least
``MIN_ESS_FRACTION`` of C and, where C >= 50 allows the fit, Pareto k-hat is at most 0.7 (as for
importance sampling). The stated Monte Carlo error (delta method, :attr:`AISEstimate.mc_se`) is
calibrated against repeated runs where the flag says reliable (experiments/ais_calibration.py),
and can be far too small where it does not.

All random numbers come from named counter-based streams keyed by the data point's index
(:mod:`pyro_vae.rng`; the starting draws from a generator seeded by it), so each point's result
does not depend on the batch it shares, the batch size or the number of processes. Everything is
vectorized over (chains, data points).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pyro
import torch
from pyro import poutine
from tqdm.auto import tqdm

from ..rng import derived_seed, seeded_rng, stream_key
from ..store.evaluation import AISEvaluation
from .annealed_target import STARTS, AnnealedTarget
from .hmc import (
    ADAPT_RATE,
    TARGET_ACCEPT,
    State,
    StepSizes,
    evaluate_state,
    hmc_transition,
    pilot_transitions,
    sigmoid_schedule,
    transition_noise,
    tune_step_sizes,
)
from .marginal import (
    KHAT_THRESHOLD,
    MIN_SAMPLES_FOR_KHAT,
    _finite,
    guess_max_plate_nesting,
    mean_and_se,
    pareto_khat,
)

MIN_ESS_FRACTION = 0.5
"""A point's AIS estimate is flagged unreliable when its ESS over chains is below this
fraction of the number of chains (calibrated in experiments/ais_calibration.py)."""

__all__ = [
    "ADAPT_RATE",
    "AISEstimate",
    "AnnealedTarget",
    "MIN_ESS_FRACTION",
    "STARTS",
    "State",
    "StepSizes",
    "TARGET_ACCEPT",
    "evaluate_state",
    "hmc_transition",
    "log_marginal_ais",
    "sigmoid_schedule",
]


@dataclass
class AISEstimate:
    """Per-data-point results of :func:`log_marginal_ais` (CPU tensors).

    ``log_px``: log mean_c w_c, ``[N]`` (for a reverse run: -log mean_c w_c, an upper bound);
    ``log_weights``: ``[C, N]``; ``acceptance``: mean HMC acceptance probability over chains
    and transitions, ``[N]``; ``step_size``: the frozen step size at beta = 1, ``[N]``.
    """

    log_px: torch.Tensor
    log_weights: torch.Tensor
    acceptance: torch.Tensor
    step_size: torch.Tensor
    num_steps: int
    num_chains: int
    num_leapfrog: int
    start: str
    reverse: bool = False

    @property
    def ess(self) -> torch.Tensor:
        """Effective sample size over chains, (sum_c w_c)^2 / sum_c w_c^2, between 1 and C."""
        lw = self.log_weights
        return (2 * torch.logsumexp(lw, 0) - torch.logsumexp(2 * lw, 0)).exp()

    @property
    def mc_se(self) -> torch.Tensor:
        """Monte Carlo standard error of each estimate: the delta method as for importance
        sampling, sqrt(1/ESS - 1/C), with Bessel's C / (C - 1) on the weights' variance (with
        as few as 8 chains it matters: 7 %). NaN with one chain. Trustworthy where
        :attr:`reliable` (experiments/ais_calibration.py)."""
        c = self.num_chains
        if c < 2:
            return torch.full_like(self.log_px, float("nan"))
        return ((1.0 / self.ess - 1.0 / c) * c / (c - 1)).clamp(min=0).sqrt()

    @property
    def khat(self) -> torch.Tensor:
        """Pareto k-hat of each point's final weights over chains (NaN for C < 50)."""
        return pareto_khat(self.log_weights)

    @property
    def reliable(self) -> torch.Tensor:
        """Per point: ESS >= MIN_ESS_FRACTION * C and, where C >= 50, k-hat <= 0.7 (a single
        chain is never reliable: it cannot measure its own error)."""
        if self.num_chains < 2:
            return torch.zeros(len(self.log_px), dtype=torch.bool)
        ok = self.ess >= MIN_ESS_FRACTION * self.num_chains
        if self.num_chains >= MIN_SAMPLES_FOR_KHAT:
            ok = ok & (self.khat <= KHAT_THRESHOLD)
        return ok

    def summary(self, data_dim: int | None = None, log_levels: float = 0.0) -> AISEvaluation:
        """Means over data points with standard errors, HMC and weight diagnostics, and bits
        per dimension (``log_levels`` as in :meth:`MarginalEstimate.summary`): the record
        ``evaluation.json`` keeps, without its header. ``reliable``: every point's flag
        (:attr:`reliable`) says reliable; ``khat_max`` only with enough chains for k-hat."""
        n = len(self.log_px)
        mean, se = mean_and_se(self.log_px)
        unreliable = int((~self.reliable).sum())
        khat_max = None
        if self.num_chains >= MIN_SAMPLES_FOR_KHAT:
            finite = self.khat[torch.isfinite(self.khat)]
            khat_max = finite.max().item() if len(finite) else None
        return AISEvaluation(
            method="ais",
            num_examples=n,
            num_steps=self.num_steps,
            num_chains=self.num_chains,
            num_leapfrog=self.num_leapfrog,
            start=self.start,
            reverse=self.reverse,
            log_px=mean,
            log_px_se=_finite(se),
            log_px_mc_se=_finite(self.mc_se.double().pow(2).sum().sqrt().item() / n),
            ess_mean=self.ess.double().mean().item(),
            ess_min=self.ess.double().min().item(),
            unreliable=unreliable,
            reliable=unreliable == 0,
            acceptance_mean=self.acceptance.double().mean().item(),
            acceptance_min=self.acceptance.double().min().item(),
            step_size_median=self.step_size.double().median().item(),
            khat_max=khat_max,
            bits_per_dim=(-mean + data_dim * log_levels) / (data_dim * math.log(2))
            if data_dim
            else None,
        )


def _anneal(
    density: Callable,
    index: torch.Tensor,
    z0: torch.Tensor,
    betas: torch.Tensor,
    num_leapfrog: int,
    step_sizes: StepSizes | None,
    seed: int,
    role: str,
    bar: tqdm,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run C chains per point along ``betas`` from ``z0`` ``[C, B, D]`` with the frozen
    ``step_sizes``: the log-weights ``[C, B]`` and the mean acceptance ``[B]``."""
    c, b = z0.shape[:2]
    state = evaluate_state(density, z0)
    log_w = torch.zeros(c, b, dtype=torch.float64, device=z0.device)
    accepted = torch.zeros(b, dtype=torch.float64, device=z0.device)
    num_steps = len(betas) - 1
    for t in range(1, num_steps + 1):
        log_w = log_w + (betas[t] - betas[t - 1]).item() * state.delta
        if t < num_steps:
            beta = betas[t].item()
            momentum, log_u = transition_noise(seed, index, t, role, tuple(state.z.shape))
            eps = step_sizes.at(beta).to(z0.device)
            state, acc = hmc_transition(state, beta, eps, num_leapfrog, density, momentum, log_u)
            accepted = accepted + acc.mean(0)
        bar.update(1)
    return log_w, accepted / max(num_steps - 1, 1)


def _plate_nesting(
    model: Callable, guide: Callable, x: torch.Tensor, seed: int, args: tuple, kwargs: dict
) -> int:
    """How many plates deep the program goes, from one seeded trace of its first point."""
    with seeded_rng(seed), poutine.block():
        return guess_max_plate_nesting(model, guide, x[:1], *args, **kwargs)


def _initial_state(
    target: AnnealedTarget, x: torch.Tensor, index: torch.Tensor, seed: int, purpose: str
) -> torch.Tensor:
    """C draws from pi_0 per point, each point's from a generator seeded by its index and the
    draw's ``purpose`` (one small pass per point, once per run; the T x L loop is fully
    vectorized). Only the generator of ``x``'s device is reseeded, inside one ``fork_rng``
    that restores them all."""
    pieces = []
    cuda = x.device.type == "cuda"
    key = stream_key(purpose)
    with torch.random.fork_rng(devices=[x.device] if cuda else []):
        for i in range(len(x)):
            point_seed = derived_seed(seed, int(index[i]), key)
            if cuda:
                torch.cuda.manual_seed(point_seed)
            torch.default_generator.manual_seed(point_seed)
            pieces.append(target.flatten(target.initial(x[i : i + 1])))
    return torch.cat(pieces, dim=1)


def _check_arguments(
    x: torch.Tensor, num_chains: int, num_leapfrog: int, step_size: float, target_accept: float
) -> None:
    if num_chains < 1:
        raise ValueError(f"the number of chains must be at least 1, got {num_chains}")
    if num_leapfrog < 1:
        raise ValueError(f"the number of leapfrog steps must be at least 1, got {num_leapfrog}")
    if not 0.0 < target_accept < 1.0 or not step_size > 0.0:
        raise ValueError("step_size must be positive and target_accept in (0, 1)")
    if len(x) == 0:
        raise ValueError("x holds no data points")
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise ValueError("x holds NaN or infinite values: log p(x) of such data is undefined")


def log_marginal_ais(
    model: Callable,
    guide: Callable,
    x: torch.Tensor,
    *args,
    num_steps: int = 100,
    num_chains: int = 8,
    num_leapfrog: int = 5,
    start: str = "guide",
    step_size: float = 0.1,
    target_accept: float = TARGET_ACCEPT,
    batch_size: int | None = None,
    max_rows: int = 4096,
    data_plate: str = "data",
    max_plate_nesting: int | None = None,
    seed: int = 0,
    index_offset: int = 0,
    init: torch.Tensor | None = None,
    progress: bool = False,
    **kwargs,
) -> AISEstimate:
    """log p(x_n) for every row of ``x`` by annealed importance sampling with HMC.

    Args:
        model, guide: Pyro programs called as ``fn(x_batch, *args, **kwargs)`` whose latent
            sites all lie in ``pyro.plate(data_plate, len(x_batch))`` and are real-valued.
        num_steps: T, the number of intermediate distributions (T = 1: plain importance
            sampling with ``num_chains`` samples).
        num_chains: C, independent chains per data point.
        num_leapfrog: L, leapfrog steps per HMC transition.
        start: ``"guide"`` (pi_0 = q(z|x)) or ``"prior"`` (pi_0 = p(z)).
        step_size, target_accept: the pilot run starts each point's step size at
            ``step_size`` and tunes it towards ``target_accept``; the annealing run then uses
            the tuned step sizes, frozen (:func:`~pyro_vae.infer.hmc.tune_step_sizes`).
        batch_size: data points per pass (default: ``max_rows // num_chains``).
        seed, index_offset: the draws for the point ``x[i]`` are keyed by
            ``(seed, index_offset + i)``.
        init: ``[B, D]`` (flattened latent values, one per point) to run the path *backwards*
            from exact posterior samples (BDMC's upper bound); then ``log_px`` holds
            -log mean_c w_c, a stochastic upper bound on log p(x).
    """
    _check_arguments(x, num_chains, num_leapfrog, step_size, target_accept)
    n = len(x)
    betas = sigmoid_schedule(num_steps)
    reverse = init is not None
    if reverse:
        betas = betas.flip(0)
        if init.dim() != 2 or len(init) != n:
            raise ValueError(f"init must be [len(x), D] latent values, got {tuple(init.shape)}")
    batch_size = min(n, batch_size or max(1, max_rows // num_chains))
    if max_plate_nesting is None:
        max_plate_nesting = _plate_nesting(model, guide, x, seed, args, kwargs)
    target = AnnealedTarget(
        model, guide, num_chains, start, args, kwargs, data_plate, max_plate_nesting
    )
    starts = range(0, n, batch_size)
    results: dict[str, list[torch.Tensor]] = {"log_w": [], "acc": [], "eps": []}
    bar = tqdm(
        total=len(starts) * (num_steps + pilot_transitions(num_steps)),
        desc=f"AIS log p(x), T={num_steps}, C={num_chains}" + (" (reverse)" if reverse else ""),
        unit="step",
        disable=not progress,
        mininterval=0.5,
        dynamic_ncols=True,
    )
    with bar:
        for s in starts:
            xb = x[s : s + batch_size]
            index = torch.arange(index_offset + s, index_offset + s + len(xb), device=x.device)
            pilot_z0 = _initial_state(target, xb, index, seed, "ais/pilot/initial")
            if reverse:
                zb = init[s : s + len(xb)].to(x.device)
                z0 = zb.unsqueeze(0).expand(num_chains, *zb.shape).contiguous()
            else:
                z0 = _initial_state(target, xb, index, seed, "ais/forward/initial")
            target.prepare(xb, pilot_z0)

            def density(z: torch.Tensor, xb: torch.Tensor = xb):
                return target.log_densities(z, xb)

            role = "reverse" if reverse else "forward"
            with pyro.validation_enabled(False):  # moving chains may step outside checks
                step_sizes = tune_step_sizes(
                    density,
                    pilot_z0,
                    num_steps,
                    num_leapfrog,
                    step_size,
                    target_accept,
                    seed,
                    index,
                    lambda: bar.update(1),
                )
                log_w, acc = _anneal(
                    density, index, z0, betas, num_leapfrog, step_sizes, seed, role, bar
                )
            eps = step_sizes.at(1.0) if step_sizes else torch.full((len(xb),), step_size)
            results["log_w"].append(log_w.cpu())
            results["acc"].append(acc.cpu())
            results["eps"].append(eps.double().cpu())
    log_w = torch.cat(results["log_w"], dim=1)
    lme = torch.logsumexp(log_w, 0) - math.log(num_chains)
    return AISEstimate(
        log_px=-lme if reverse else lme,
        log_weights=log_w,
        acceptance=torch.cat(results["acc"]),
        step_size=torch.cat(results["eps"]),
        num_steps=num_steps,
        num_chains=num_chains,
        num_leapfrog=num_leapfrog,
        start=start,
        reverse=reverse,
    )
