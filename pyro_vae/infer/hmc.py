"""Hamiltonian Monte Carlo transitions for annealing, their random numbers, and the pilot run
that tunes their step sizes before any weighted chain moves.

Random numbers: every use draws from its own named counter-based stream
(:func:`pyro_vae.rng.counter_normal` / :func:`~pyro_vae.rng.counter_uniform`), named by
:func:`stream` from the run's role (``"pilot"``, ``"forward"``, ``"reverse"``) and the use
(``"momentum"``, ``"accept"``): no two uses can share numbers, whatever the shapes.

Step sizes: HMC's step size is tuned towards an acceptance rate of 0.65 per data point (the
target Wu et al. 2017 use for AIS with HMC on decoder-based models, after Neal 2011), but in a
*pilot* run on chains whose weights are thrown away, and then frozen. Adapting inside the
weighted run would make the kernel at step t depend on the weighted chains' earlier moves, and
E[w] = p(x), on which AIS's lower bound and BDMC's sandwich rest, would no longer hold (Neal
2001's argument needs each transition fixed independently of the weighted chains; issue 25's
audit found AIS above the exact log p(x) with the step size adapted in the run).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..rng import counter_normal, counter_uniform

TARGET_ACCEPT = 0.65
"""Acceptance rate the pilot tunes each point's step size towards."""
ADAPT_RATE = 1.0
"""In the pilot, log step size += ADAPT_RATE * (acceptance - target) after each transition: a
full-accept step grows it by 42 %, a full reject shrinks it by half."""
WARMUP = 10
"""Pilot transitions at the first intermediate distribution before the pilot moves on."""
PILOT_STEPS = 50
"""At most this many intermediate distributions in the pilot (its schedule is coarser than a
long run's; the step size between two of them is interpolated in beta)."""
ROLES = ("pilot", "forward", "reverse")
USES = ("momentum", "accept")


def stream(role: str, use: str) -> str:
    """The name of the random stream for one use in one run (``"ais/forward/momentum"``)."""
    if role not in ROLES or use not in USES:
        raise ValueError(f"unknown random stream {role!r}/{use!r}")
    return f"ais/{role}/{use}"


def transition_noise(
    seed: int, index: torch.Tensor, t: int, role: str, shape: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The momentum ``shape`` = ``[C, B, D]`` (standard normal) and the log-uniform of the
    Metropolis test ``[C, B]`` of transition ``t`` of the run ``role``, for the points
    ``index``: two named streams, so the test never reuses a momentum's numbers."""
    momentum = counter_normal(seed, index, t, stream(role, "momentum"), shape)
    log_u = counter_uniform(seed, index, t, stream(role, "accept"), shape[:2]).log()
    return momentum, log_u


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
    every pair's own gradient). A pair whose z is not finite (a leapfrog trajectory that
    diverged) is evaluated at 0 instead and given NaN densities, so the Metropolis test rejects
    it, instead of a validated distribution raising on the whole batch."""
    z = z.detach()
    diverged = ~torch.isfinite(z).all(-1)
    at = torch.where(diverged.unsqueeze(-1), torch.zeros_like(z), z).requires_grad_(True)
    with torch.enable_grad():
        base, joint = density(at)
        (grad_base,) = torch.autograd.grad(base.sum(), at, retain_graph=True)
        (grad_joint,) = torch.autograd.grad(joint.sum(), at)
    base, joint = base.detach().double(), joint.detach().double()
    base, joint = base.masked_fill(diverged, math.nan), joint.masked_fill(diverged, math.nan)
    return State(z, base, joint, grad_base, grad_joint)


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


# ------------------------------------------------------------------ schedule and step sizes
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


@dataclass
class StepSizes:
    """A frozen step-size schedule per data point: log step sizes ``[P, B]`` tuned at the
    pilot's increasing ``betas`` ``[P]``, linearly interpolated in beta in between (and held
    constant beyond the ends)."""

    betas: torch.Tensor
    log_eps: torch.Tensor

    def at(self, beta: float) -> torch.Tensor:
        """The step sizes ``[B]`` at ``beta``."""
        b = self.betas
        if len(b) == 1 or beta <= b[0].item():
            return self.log_eps[0].exp()
        if beta >= b[-1].item():
            return self.log_eps[-1].exp()
        hi = int(torch.searchsorted(b, torch.tensor([beta], dtype=b.dtype), right=True)[0])
        lo = hi - 1
        w = (beta - b[lo].item()) / (b[hi] - b[lo]).item()
        return ((1.0 - w) * self.log_eps[lo] + w * self.log_eps[hi]).exp()


def pilot_transitions(num_steps: int) -> int:
    """How many HMC transitions the pilot for a T-step run makes (0 for T = 1)."""
    p = min(num_steps, PILOT_STEPS)
    return 0 if p < 2 else WARMUP + p - 1


def tune_step_sizes(
    density: Density,
    z0: torch.Tensor,
    num_steps: int,
    num_leapfrog: int,
    step_size: float,
    target_accept: float,
    seed: int,
    index: torch.Tensor,
    progress: Callable[[], None] = lambda: None,
) -> StepSizes | None:
    """The pilot: chains from ``z0`` (draws from pi_0 of their own) move along a schedule of
    min(T, PILOT_STEPS) steps, WARMUP transitions at its first intermediate distribution and
    one at each later one, with the per-point step size adapted after every transition
    (Robbins-Monro on log eps towards ``target_accept``). The step size reached at each beta
    is kept; the chains and their weights are discarded. None when T = 1 (no transition)."""
    p = min(num_steps, PILOT_STEPS)
    if p < 2:
        return None
    betas = sigmoid_schedule(p)[1:p]  # where the run's transitions happen
    state = evaluate_state(density, z0)
    log_eps = torch.full((z0.shape[1],), math.log(step_size), dtype=torch.float64, device=z0.device)
    kept = []
    plan = [betas[0].item()] * WARMUP + betas.tolist()
    for t, beta in enumerate(plan):
        momentum, log_u = transition_noise(seed, index, t, "pilot", tuple(state.z.shape))
        eps = log_eps.exp()
        state, acc = hmc_transition(state, beta, eps, num_leapfrog, density, momentum, log_u)
        log_eps = log_eps + ADAPT_RATE * (acc.mean(0) - target_accept)
        if t >= WARMUP:
            kept.append(log_eps)
        progress()
    return StepSizes(betas, torch.stack(kept))
