"""log p(x) by annealed importance sampling (AIS) with HMC transitions, and its bidirectional
sandwich (BDMC), for any Pyro model/guide pair whose latent sites lie in the data plate.

AIS (Neal 2001) moves C chains per data point through the geometric path

    f_beta(z) = log pi_0(z) + beta * [log p(x, z) - log pi_0(z)],   0 = beta_0 < ... < beta_T = 1,

from pi_0 = q(z|x) (the guide, default) or pi_0 = p(z) (the prior) to the unnormalized
posterior p(x, z). Each chain accumulates the log-weight

    log w = sum_t (beta_t - beta_{t-1}) [log p(x, z_{t-1}) - log pi_0(z_{t-1})],

where z_t follows from z_{t-1} by one HMC transition that leaves pi_{beta_t} invariant, so
E[w] = p(x): log p^(x) = log mean_c w_c is a stochastic lower bound (Jensen) that becomes exact
as T grows, and exact at any T when pi_0 is the exact posterior. The schedule is the sigmoid of
Grosse et al. (2015); HMC (velocity Verlet from ``pyro.ops.integrator``, L leapfrog steps, unit
mass) adapts its step size per data point towards an acceptance rate of 0.65, as Wu et al. (2017)
do per batch.

Run backwards (beta from 1 to 0) from an exact posterior sample, the same sum estimates
1 / p(x): -log mean_c w_c is a stochastic *upper* bound on log p(x). On data simulated from the
model, where the latent z* that generated x is an exact posterior sample, forward and reverse
AIS sandwich the true log p(x) (bidirectional Monte Carlo, Grosse et al. 2015): the gap
between the two bounds says how far off either is.

All random numbers come from :func:`pyro_vae.rng.counter_normal` keyed by the data point's
index (the starting draws from a generator seeded by it), so each point's result does not
depend on the batch it shares, the batch size or the number of processes. Everything is
vectorized over (chains, data points).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyro
import torch
from pyro import poutine
from pyro.distributions import constraints
from pyro.poutine.util import prune_subsample_sites
from torch.distributions.mixture_same_family import MixtureSameFamilyConstraint
from tqdm.auto import tqdm

from ..model.parts import density_everywhere
from ..rng import counter_normal, counter_uniform, derived_seed, seeded_rng
from .marginal import (
    PARTICLE_PLATE,
    MarginalEstimate,
    _finite,
    _per_datapoint,
    guess_max_plate_nesting,
    log_marginal,
    mean_and_se,
)

TARGET_ACCEPT = 0.65
"""Acceptance rate the per-point HMC step size is adapted towards."""
STARTS = ("guide", "prior")
ADAPT_RATE = 1.0
"""log step size += ADAPT_RATE * (acceptance - target) after each transition: a full-accept
step grows it by 42 %, a full reject shrinks it by half, so it settles within tens of steps."""


def sigmoid_schedule(num_steps: int, sharpness: float = 4.0) -> torch.Tensor:
    """beta_0 = 0 < ... < beta_T = 1 on the rescaled sigmoid of Grosse et al. (2015):
    beta_t = (s(d (2t/T - 1)) - s(-d)) / (s(d) - s(-d)), s the logistic function, d = 4
    (dense steps near 0 and 1, where the log-weight increments change fastest)."""
    if num_steps < 1:
        raise ValueError(f"the number of AIS steps must be at least 1, got {num_steps}")
    t = torch.linspace(-sharpness, sharpness, num_steps + 1, dtype=torch.float64).sigmoid()
    beta = (t - t[0]) / (t[-1] - t[0])
    beta[0], beta[-1] = 0.0, 1.0
    return beta


def _real_valued(support: constraints.Constraint) -> bool:
    """Whether a support is R^d: ``real``, ``independent(real, k)``, or a mixture's
    (``MixtureSameFamily``) of components with such a support."""
    while isinstance(support, constraints.independent | MixtureSameFamilyConstraint):
        support = support.base_constraint
    return support is constraints.real


# ------------------------------------------------------------------ the annealed log-densities
@dataclass
class _Site:
    name: str
    shape: tuple[int, ...]  # the value's shape in a trace with C chains (particle plate first)
    data_pos: int  # where the data-plate dimension lies in that shape


class AnnealedTarget:
    """f_beta(z) = log pi_0(z) + beta * delta(z), delta = log p(x, z) - log pi_0(z), for a
    batch of data points and C chains, with z flattened to ``[C, B, D]``.

    The latent sites and their layout come from one trace of the starting distribution; the
    log-densities from traces of the model (and the guide) conditioned on z, reduced to one
    value per (chain, data point) as in :func:`~pyro_vae.infer.marginal.log_importance_weights`.
    """

    def __init__(
        self,
        model: Callable,
        guide: Callable,
        num_chains: int,
        start: str,
        args: tuple,
        kwargs: dict,
        data_plate: str,
        max_plate_nesting: int,
    ) -> None:
        if start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {start!r}")
        encoder = getattr(getattr(guide, "__self__", None), "encoder", None)
        if start == "guide" and encoder is not None and not density_everywhere(encoder):
            raise ValueError(GUIDE_DENSITY_MISSING)
        self.model, self.guide = model, guide
        self.args, self.kwargs = args, kwargs
        self.num_chains, self.start, self.data_plate = num_chains, start, data_plate
        self.nesting = max(max_plate_nesting, 1)
        self.sites: list[_Site] = []
        self._guide_sites: dict[str, dict[str, Any]] | None = None

    def _vectorized(self, fn: Callable) -> Callable:
        def particles(*a, **k):
            with pyro.plate(PARTICLE_PLATE, self.num_chains, dim=-(self.nesting + 1)):
                return fn(*a, **k)

        return particles

    def _trace(self, fn: Callable, x: torch.Tensor, values: dict[str, torch.Tensor] | None):
        program = self._vectorized(fn if values is None else poutine.condition(fn, data=values))
        with poutine.block():
            trace = poutine.trace(program).get_trace(x, *self.args, **self.kwargs)
        return prune_subsample_sites(trace)

    def _latent_sites(self, trace) -> list[str]:
        return [
            name
            for name, site in trace.nodes.items()
            if site["type"] == "sample"
            and not site["is_observed"]
            and not site["infer"].get("is_auxiliary")
        ]

    # -- layout -------------------------------------------------------------------------
    def initial(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One draw of C chains from pi_0 for the data points ``x`` (the caller seeds it)."""
        fn = self.guide if self.start == "guide" else self.model
        trace = self._trace(fn, x, None)
        names = self._latent_sites(trace)
        if not names:
            raise ValueError(f"the {self.start} has no latent sample site to anneal")
        values = {}
        for name in names:
            site = trace.nodes[name]
            value = site["value"].detach()
            frames = {f.name: f for f in site["cond_indep_stack"] if f.vectorized}
            if self.data_plate not in frames:
                raise ValueError(
                    f"sample site {name!r} lies outside the plate {self.data_plate!r}: AIS, "
                    "like importance sampling, needs every latent variable local to a data point"
                )
            if not _real_valued(site["fn"].support):
                raise ValueError(
                    f"latent site {name!r} has support {site['fn'].support}: HMC here needs "
                    "continuous, unconstrained (real-valued) latent variables"
                )
            total = self.nesting + 1 + site["fn"].event_dim
            if value.dim() != total:
                raise ValueError(
                    f"latent site {name!r} has shape {tuple(value.shape)}: expected "
                    f"{self.nesting + 1} batch dimensions (chains, plates) and "
                    f"{site['fn'].event_dim} event dimensions"
                )
            values[name] = value
            if len(self.sites) < len(names):
                pos = self.nesting + 1 + frames[self.data_plate].dim
                self.sites.append(_Site(name, tuple(value.shape), pos))
        return values

    def flatten(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        """Site values -> ``[C, B, D]``."""
        pieces = []
        for s in self.sites:
            moved = values[s.name].movedim(s.data_pos, 1)
            pieces.append(moved.reshape(moved.shape[0], moved.shape[1], -1))
        return torch.cat(pieces, dim=-1)

    def unflatten(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """``[C, B, D]`` -> site values."""
        out, offset = {}, 0
        b = z.shape[1]
        for s in self.sites:
            moved = list(s.shape)
            moved.pop(s.data_pos)
            moved.insert(1, b)
            size = math.prod(moved[2:])
            piece = z[..., offset : offset + size].reshape(moved).movedim(1, s.data_pos)
            out[s.name] = piece
            offset += size
        return out

    # -- densities ----------------------------------------------------------------------
    def _reduce(self, trace, names: set[str] | None, x: torch.Tensor) -> torch.Tensor:
        """The sites' log-densities summed per (chain, point), in the model's own dtype (the
        caller takes the values to float64 once they are detached)."""
        shape = (self.num_chains, len(x))
        trace.compute_log_prob()
        terms = [
            _per_datapoint(name, site, self.nesting, self.data_plate, shape)
            for name, site in trace.nodes.items()
            if site["type"] == "sample" and (names is None or name in names)
        ]
        return sum(terms[1:], terms[0]) if terms else x.new_zeros(shape)

    def log_densities(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log pi_0(z), log p(x, z)), each ``[C, B]``, differentiable in z."""
        values = self.unflatten(z)
        latent = {s.name for s in self.sites}
        model_trace = self._trace(self.model, x, values)
        joint = self._reduce(model_trace, None, x)
        if self.start == "prior":
            return self._reduce(model_trace, latent, x), joint
        if self._guide_sites is not None:
            return self._guide_log_density(values, x), joint
        try:  # a transform without an inverse raises one of these (Pyro's planar: KeyError)
            guide_trace = self._trace(self.guide, x, values)
            return self._reduce(guide_trace, latent, x), joint
        except (NotImplementedError, KeyError) as e:
            raise ValueError(GUIDE_DENSITY_MISSING) from e

    # -- the guide traced once per batch ---------------------------------------------------
    def prepare(self, x: torch.Tensor, z: torch.Tensor) -> None:
        """Before annealing a batch from the guide: trace the guide once, and keep its
        distributions when they do not depend on z (a guide q(z|x) that is Gaussian given x,
        as the encoders here), so later evaluations only run the model. Checked by tracing
        again at another z: any site whose log-density of the same value changes means the
        guide is hierarchical in z, and it is then re-run at every evaluation."""
        self._guide_sites = None
        if self.start != "guide":
            return
        probe = self.unflatten(z)
        other = self.unflatten(z * 0.5 + 0.25)
        try:
            with torch.no_grad():
                first = self._trace(self.guide, x, probe)
                second = self._trace(self.guide, x, other)
                same = all(
                    torch.equal(
                        first.nodes[s.name]["fn"].log_prob(probe[s.name]),
                        second.nodes[s.name]["fn"].log_prob(probe[s.name]),
                    )
                    for s in self.sites
                )
        except (NotImplementedError, KeyError) as e:
            raise ValueError(GUIDE_DENSITY_MISSING) from e
        if same:
            self._guide_sites = {s.name: first.nodes[s.name] for s in self.sites}

    def _guide_log_density(self, values: dict[str, torch.Tensor], x: torch.Tensor):
        shape = (self.num_chains, len(x))
        terms = [
            _per_datapoint(
                name,
                {**site, "unscaled_log_prob": site["fn"].log_prob(values[name])},
                self.nesting,
                self.data_plate,
                shape,
            )
            for name, site in (self._guide_sites or {}).items()
        ]
        return sum(terms[1:], terms[0])


GUIDE_DENSITY_MISSING = (
    "the guide's density is not available at arbitrary z (for instance a planar flow, whose "
    "transform has no inverse): start AIS from the prior instead (start='prior'; on the "
    "command line --ais-start prior)"
)


# ------------------------------------------------------------------ HMC
@dataclass
class State:
    """Chains at one point of the path: positions and what the path needs there."""

    z: torch.Tensor  # [C, B, D]
    base: torch.Tensor  # log pi_0(z), [C, B] float64
    joint: torch.Tensor  # log p(x, z), [C, B] float64
    grad_base: torch.Tensor  # [C, B, D]
    grad_joint: torch.Tensor  # [C, B, D]

    @property
    def delta(self) -> torch.Tensor:
        """log p(x, z) - log pi_0(z): the log-weight increment per unit of beta."""
        return self.joint - self.base

    def log_f(self, beta: float) -> torch.Tensor:
        return (1.0 - beta) * self.base + beta * self.joint

    def grad_log_f(self, beta: float) -> torch.Tensor:
        return (1.0 - beta) * self.grad_base + beta * self.grad_joint

    def where(self, take: torch.Tensor, other: State) -> State:
        """``other`` where ``take`` ([C, B]) is true, else ``self``."""
        t = take.unsqueeze(-1)
        return State(
            torch.where(t, other.z, self.z),
            torch.where(take, other.base, self.base),
            torch.where(take, other.joint, self.joint),
            torch.where(t, other.grad_base, self.grad_base),
            torch.where(t, other.grad_joint, self.grad_joint),
        )


Density = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""z ``[C, B, D]`` -> (log pi_0(z), log p(x, z)), each ``[C, B]``."""


def evaluate_state(density: Density, z: torch.Tensor) -> State:
    """Both log-densities at z and their gradients: one forward pass, and one backward pass
    through each (the sums over (chain, point) couple no two pairs, so the gradient of a sum is
    every pair's own gradient)."""
    z = z.detach().requires_grad_(True)
    with torch.enable_grad():
        base, joint = density(z)
        (grad_base,) = torch.autograd.grad(base.sum(), z, retain_graph=True)
        (grad_joint,) = torch.autograd.grad(joint.sum(), z)
    return State(z.detach(), base.detach().double(), joint.detach().double(), grad_base, grad_joint)


def hmc_transition(
    state: State,
    beta: float,
    step_size: torch.Tensor,
    num_leapfrog: int,
    density: Density,
    momentum: torch.Tensor,
    log_uniform: torch.Tensor,
) -> tuple[State, torch.Tensor]:
    """One HMC transition per (chain, point) that leaves exp(f_beta) invariant.

    Velocity Verlet with unit mass (as ``pyro.ops.integrator.velocity_verlet``, which needs a
    scalar potential and returns one combined gradient; AIS needs every pair's energy and the
    gradients of log pi_0 and log p(x, z) apart, to move to the next beta without another
    evaluation), then a Metropolis test per pair. ``step_size``: ``[B]``; ``momentum``:
    ``[C, B, D]`` standard normal; ``log_uniform``: ``[C, B]``. Returns the new state and the
    acceptance probabilities ``[C, B]``.
    """
    eps = step_size.to(state.z.dtype).reshape(1, -1, 1)
    r = momentum.to(state.z.dtype)
    proposal = state
    r = r + 0.5 * eps * proposal.grad_log_f(beta)
    for step in range(num_leapfrog):
        proposal = evaluate_state(density, proposal.z + eps * r)
        g = proposal.grad_log_f(beta)
        r = r + (eps if step < num_leapfrog - 1 else 0.5 * eps) * g
    h0 = -state.log_f(beta) + 0.5 * momentum.double().pow(2).sum(-1)
    h1 = -proposal.log_f(beta) + 0.5 * r.double().pow(2).sum(-1)
    log_accept = torch.nan_to_num(h0 - h1, nan=-math.inf).clamp(max=0.0)
    accept = log_uniform < log_accept
    return state.where(accept, proposal), log_accept.exp()


# ------------------------------------------------------------------ the AIS loop
@dataclass
class AISEstimate:
    """Per-data-point results of :func:`log_marginal_ais` (CPU tensors).

    ``log_px``: log mean_c w_c, ``[N]`` (for a reverse run: -log mean_c w_c, an upper bound);
    ``log_weights``: ``[C, N]``; ``acceptance``: mean HMC acceptance probability over chains
    and transitions, ``[N]``; ``step_size``: the adapted step size at the end, ``[N]``.
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
        """Monte Carlo standard error of each estimate: sqrt(1/ESS - 1/C), the delta method as
        for importance sampling (NaN with one chain)."""
        if self.num_chains < 2:
            return torch.full_like(self.log_px, float("nan"))
        return (1.0 / self.ess - 1.0 / self.num_chains).clamp(min=0).sqrt()

    def summary(self, data_dim: int | None = None, log_levels: float = 0.0) -> dict[str, Any]:
        """Means over data points with standard errors, HMC diagnostics and bits per dimension
        (``log_levels`` as in :meth:`MarginalEstimate.summary`)."""
        n = len(self.log_px)
        mean, se = mean_and_se(self.log_px)
        out: dict[str, Any] = {
            "method": "ais",
            "num_examples": n,
            "num_steps": self.num_steps,
            "num_chains": self.num_chains,
            "num_leapfrog": self.num_leapfrog,
            "start": self.start,
            "reverse": self.reverse,
            "log_px": mean,
            "log_px_se": _finite(se),
            "log_px_mc_se": _finite(self.mc_se.double().pow(2).sum().sqrt().item() / n),
            "ess_mean": self.ess.double().mean().item(),
            "ess_min": self.ess.double().min().item(),
            "acceptance_mean": self.acceptance.double().mean().item(),
            "acceptance_min": self.acceptance.double().min().item(),
            "step_size_median": self.step_size.double().median().item(),
        }
        if data_dim:
            out["bits_per_dim"] = (-mean + data_dim * log_levels) / (data_dim * math.log(2))
        return out


def _anneal(
    target: AnnealedTarget,
    x: torch.Tensor,
    index: torch.Tensor,
    z0: torch.Tensor,
    betas: torch.Tensor,
    num_leapfrog: int,
    step_size: float,
    target_accept: float,
    seed: int,
    stream: int,
    bar: tqdm,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run C chains per point along ``betas`` from ``z0`` ``[C, B, D]``: the log-weights
    ``[C, B]``, the mean acceptance ``[B]`` and the final step sizes ``[B]``."""

    def density(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return target.log_densities(z, x)

    c, b = z0.shape[:2]
    target.prepare(x, z0)
    state = evaluate_state(density, z0)
    log_w = torch.zeros(c, b, dtype=torch.float64, device=x.device)
    eps = torch.full((b,), step_size, dtype=torch.float64, device=x.device)
    accepted = torch.zeros(b, dtype=torch.float64, device=x.device)
    num_steps = len(betas) - 1
    with pyro.validation_enabled(False):  # moving chains may step outside what checks allow
        for t in range(1, num_steps + 1):
            log_w = log_w + (betas[t] - betas[t - 1]).item() * state.delta
            if t < num_steps:
                shape = tuple(state.z.shape)
                momentum = counter_normal(seed, index, t, 2 * stream, shape)
                log_u = counter_uniform(seed, index, t, 2 * stream + 1, (c, b)).log()
                state, acc = hmc_transition(
                    state, betas[t].item(), eps, num_leapfrog, density, momentum, log_u
                )
                rate = acc.mean(0)
                accepted = accepted + rate
                # Robbins-Monro on log eps towards the target acceptance, per point
                eps = eps * torch.exp(ADAPT_RATE * (rate - target_accept))
            bar.update(1)
    return log_w, accepted / max(num_steps - 1, 1), eps


def _plate_nesting(
    model: Callable, guide: Callable, x: torch.Tensor, seed: int, args: tuple, kwargs: dict
) -> int:
    """How many plates deep the program goes, from one seeded trace of its first point."""
    with seeded_rng(seed), poutine.block():
        return guess_max_plate_nesting(model, guide, x[:1], *args, **kwargs)


def _initial_state(
    target: AnnealedTarget, x: torch.Tensor, index: torch.Tensor, seed: int
) -> torch.Tensor:
    """C draws from pi_0 per point, each point's from a generator seeded by its index (one
    small pass per point, once per run; the T x L loop is fully vectorized). Only the
    generator of ``x``'s device is reseeded, inside one ``fork_rng`` that restores them all."""
    pieces = []
    cuda = x.device.type == "cuda"
    with torch.random.fork_rng(devices=[x.device] if cuda else []):
        for i in range(len(x)):
            point_seed = derived_seed(seed, int(index[i]), 0x5EED)
            if cuda:
                torch.cuda.manual_seed(point_seed)
            torch.default_generator.manual_seed(point_seed)
            pieces.append(target.flatten(target.initial(x[i : i + 1])))
    return torch.cat(pieces, dim=1)


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
        step_size: initial HMC step size, then adapted per point towards ``target_accept``.
        batch_size: data points per pass (default: ``max_rows // num_chains``).
        seed, index_offset: the draws for the point ``x[i]`` are keyed by
            ``(seed, index_offset + i)``.
        init: ``[B, D]`` (flattened latent values, one per point) to run the path *backwards*
            from exact posterior samples (BDMC's upper bound); then ``log_px`` holds
            -log mean_c w_c, a stochastic upper bound on log p(x).
    """
    if num_chains < 1:
        raise ValueError(f"the number of chains must be at least 1, got {num_chains}")
    if num_leapfrog < 1:
        raise ValueError(f"the number of leapfrog steps must be at least 1, got {num_leapfrog}")
    if not 0.0 < target_accept < 1.0 or not step_size > 0.0:
        raise ValueError("step_size must be positive and target_accept in (0, 1)")
    n = len(x)
    if n == 0:
        raise ValueError("x holds no data points")
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise ValueError("x holds NaN or infinite values: log p(x) of such data is undefined")
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
        total=len(starts) * num_steps,
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
            if reverse:
                if not target.sites:
                    with seeded_rng(seed):
                        target.initial(xb[:1])
                zb = init[s : s + len(xb)].to(x.device)
                z0 = zb.unsqueeze(0).expand(num_chains, *zb.shape).contiguous()
            else:
                z0 = _initial_state(target, xb, index, seed)
            log_w, acc, eps = _anneal(
                target,
                xb,
                index,
                z0,
                betas,
                num_leapfrog,
                step_size,
                target_accept,
                seed,
                1 if reverse else 0,
                bar,
            )
            results["log_w"].append(log_w.cpu())
            results["acc"].append(acc.cpu())
            results["eps"].append(eps.cpu())
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


# ------------------------------------------------------------------ BDMC
@dataclass
class BDMCResult:
    """Bidirectional Monte Carlo on images simulated from the model: per image, forward AIS's
    stochastic lower bound, reverse AIS's stochastic upper bound (from the latent z* that
    generated it), and, when asked, importance sampling with the guide on the same images."""

    forward: AISEstimate
    reverse: AISEstimate
    importance: MarginalEstimate | None = None

    @property
    def gap(self) -> torch.Tensor:
        """Upper minus lower bound per image: how far off either estimate can be."""
        return self.reverse.log_px - self.forward.log_px

    def summary(self) -> dict[str, Any]:
        def mean_se(t: torch.Tensor) -> tuple[float, float | None]:
            mean, se = mean_and_se(t)
            return mean, _finite(se)

        lower, lower_se = mean_se(self.forward.log_px)
        upper, upper_se = mean_se(self.reverse.log_px)
        gap, gap_se = mean_se(self.gap)
        out: dict[str, Any] = {
            "method": "bdmc",
            "num_examples": len(self.gap),
            "num_steps": self.forward.num_steps,
            "num_chains": self.forward.num_chains,
            "num_leapfrog": self.forward.num_leapfrog,
            "start": self.forward.start,
            "lower": lower,
            "lower_se": lower_se,
            "upper": upper,
            "upper_se": upper_se,
            "gap": gap,
            "gap_se": gap_se,
            "acceptance_forward": self.forward.acceptance.double().mean().item(),
            "acceptance_reverse": self.reverse.acceptance.double().mean().item(),
        }
        if self.importance is not None:
            is_mean, _ = mean_se(self.importance.log_px)
            below, below_se = mean_se(self.forward.log_px - self.importance.log_px)
            out.update(
                {
                    "is_num_samples": self.importance.num_samples,
                    "is_log_px": is_mean,
                    "lower_minus_is": below,
                    "lower_minus_is_se": below_se,
                }
            )
        return out


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
    one observed site, whose value is its input x (``poutine.uncondition`` samples it)."""
    if max_plate_nesting is None:
        max_plate_nesting = _plate_nesting(model, guide, x_like, seed, args, kwargs)
    target = AnnealedTarget(model, guide, 1, start, args, kwargs, data_plate, max_plate_nesting)
    with seeded_rng(derived_seed(seed, 0xBD3C)), torch.no_grad():
        target.initial(x_like[:1])  # the latent layout
        trace = target._trace(poutine.uncondition(model), x_like, None)
    observed = [
        name
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and site["infer"].get("was_observed")
    ]
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
    seed: int = 0,
    progress: bool = False,
    **kwargs,
) -> BDMCResult:
    """The BDMC sandwich on ``len(x_like)`` images simulated from the model (Grosse et al.
    2015): forward AIS (lower bound) and reverse AIS from the generating z* (upper bound) on
    the same schedule, and importance sampling with ``num_samples`` guide draws on the same
    images (``None``: skip it). ``x_like`` only gives the data's shape and type."""

    x_sim, z_star = simulate(model, guide, x_like, *args, start=start, seed=seed, **kwargs)
    settings = dict(
        num_steps=num_steps,
        num_chains=num_chains,
        num_leapfrog=num_leapfrog,
        start=start,
        seed=seed,
        progress=progress,
    )
    forward = log_marginal_ais(model, guide, x_sim, *args, **settings, **kwargs)
    reverse = log_marginal_ais(model, guide, x_sim, *args, init=z_star, **settings, **kwargs)
    importance = None
    if num_samples:
        importance = log_marginal(
            model, guide, x_sim, num_samples, *args, seed=seed, progress=progress, **kwargs
        )
    return BDMCResult(forward, reverse, importance)
