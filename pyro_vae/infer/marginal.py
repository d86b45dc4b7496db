"""log p(x) by importance sampling, for any Pyro model/guide pair, with diagnostics.

With the guide as proposal, for each data point x_n::

    log p(x_n) ~= log (1/K) sum_k w_nk,   w_nk = p(x_n, z_nk) / q(z_nk | x_n),   z_nk ~ q(z | x_n)

(Burda et al. 2015; the standard protocol uses K = 5000 on the test set). The estimate is a
lower bound in expectation (Jensen) that tightens as K grows; with K = 1 it is the ELBO. Beside
it, from the same draws, come:

* the ELBO, (1/K) sum_k log w_nk;
* the effective sample size ESS_n = (sum_k w_nk)^2 / sum_k w_nk^2, between 1 and K;
* the Monte Carlo standard error of each estimate, sqrt(1/ESS_n - 1/K) (delta method);
* Pareto k-hat (PSIS, Vehtari et al.): a generalized Pareto fit to the largest weights of each
  data point. k-hat > 0.7 means the weights are so heavy-tailed that the estimate cannot be
  trusted: the guide is too poor a proposal for that point (k-hat < 0.5: fine).

Particles are vectorized with an outer ``pyro.plate`` (as ``pyro.infer.importance`` does) and
processed in chunks so memory stays bounded; all K log-weights of a data batch are kept and
combined exactly by ``logsumexp``. Unlike ``pyro.infer.importance``, which sums log-weights over
the data plate (one weight per batch), the weights here stay per data point: every sample site
must lie inside the data plate (local latent variables), and any plates nested inside it are
summed out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyro
import torch
from pyro import poutine
from pyro.distributions.util import scale_and_mask
from pyro.infer.util import is_validation_enabled
from pyro.ops.stats import fit_generalized_pareto
from pyro.poutine.util import prune_subsample_sites, site_is_subsample
from torch import nn
from tqdm.auto import tqdm

from ..rng import derived_seed, isolated_rng, seeded_rng
from ..store.evaluation import ISEvaluation

PARTICLE_PLATE = "num_particles_vectorized"
KHAT_THRESHOLD = 0.7
"""Pareto k-hat above which an importance-sampling estimate is unreliable."""
MIN_SAMPLES_FOR_KHAT = 50


def _per_datapoint(
    name: str, site: dict[str, Any], nesting: int, data_plate: str, shape: tuple[int, int]
) -> torch.Tensor:
    """A site's log-density reduced to ``[particles, batch]``: unscaled (no subsampling or
    annealing scale), masked, summed over plates other than particles and data."""
    frames = {f.name: f for f in site["cond_indep_stack"] if f.vectorized}
    if data_plate not in frames:
        raise ValueError(
            f"sample site {name!r} lies outside the plate {data_plate!r}: log p(x) only "
            "factorizes over data points when every latent variable is local to a data point. "
            f"Put the site inside pyro.plate({data_plate!r}, ...) or pass data_plate=<your "
            "plate's name>."
        )
    log_p = scale_and_mask(site["unscaled_log_prob"], 1.0, site["mask"])
    total = nesting + 1
    if log_p.dim() > total:
        raise ValueError(
            f"sample site {name!r} has batch shape {tuple(log_p.shape)}, more dimensions than "
            f"its plates declare ({nesting}); use .to_event() for event dimensions."
        )
    log_p = log_p.reshape((1,) * (total - log_p.dim()) + tuple(log_p.shape))
    data_pos = total + frames[data_plate].dim
    others = [d for d in range(1, total) if d != data_pos]
    if others:
        log_p = log_p.sum(others, keepdim=True)
    return log_p.reshape(log_p.shape[0], log_p.shape[data_pos]).expand(shape)


def guess_max_plate_nesting(model: Callable, guide: Callable, *args, **kwargs) -> int:
    """How many plates deep the program goes (from one trace of guide and model)."""
    with poutine.block():
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(
            *args, **kwargs
        )
    dims = [
        frame.dim
        for trace in (prune_subsample_sites(model_trace), prune_subsample_sites(guide_trace))
        for site in trace.nodes.values()
        if site["type"] == "sample"
        for frame in site["cond_indep_stack"]
        if frame.vectorized
    ]
    return -min(dims) if dims else 0


def log_importance_weights(
    model: Callable,
    guide: Callable,
    x: torch.Tensor,
    num_samples: int,
    *args,
    data_plate: str = "data",
    max_plate_nesting: int | None = None,
    **kwargs,
) -> torch.Tensor:
    """log w_nk = log p(x_n, z_nk) - log q(z_nk | x_n) for ``num_samples`` vectorized draws:
    a ``[num_samples, len(x)]`` tensor. ``model`` and ``guide`` are called as
    ``fn(x, *args, **kwargs)``. Log-densities are unscaled: subsampling scales (``num_data``)
    and annealing weights do not enter. Differentiable through reparameterized draws (the IWAE
    objective uses this); wrap in ``torch.no_grad()`` for evaluation."""
    if max_plate_nesting is None:
        max_plate_nesting = guess_max_plate_nesting(model, guide, x, *args, **kwargs)
    nesting = max(max_plate_nesting, 1)
    guide_trace = poutine.trace(_vectorized(guide, num_samples, nesting)).get_trace(
        x, *args, **kwargs
    )
    model_trace = poutine.trace(
        poutine.replay(_vectorized(model, num_samples, nesting), trace=guide_trace)
    ).get_trace(x, *args, **kwargs)
    return _log_weights(model_trace, guide_trace, nesting, data_plate, x, num_samples)


def _vectorized(fn: Callable, num_samples: int, nesting: int) -> Callable:
    """``fn`` inside an outer plate of ``num_samples`` particles."""

    def particles(*a, **k):
        with pyro.plate(PARTICLE_PLATE, num_samples, dim=-(nesting + 1)):
            return fn(*a, **k)

    return particles


def _log_weights(
    model_trace, guide_trace, nesting: int, data_plate: str, x: torch.Tensor, num_samples: int
) -> torch.Tensor:
    """log p(x, z) - log q(z | x) per particle and data point, ``[num_samples, len(x)]``."""
    shape = (num_samples, len(x))
    log_w = torch.zeros(shape, device=x.device)
    for trace, sign in ((model_trace, 1.0), (guide_trace, -1.0)):
        trace = prune_subsample_sites(trace)
        trace.compute_log_prob()
        for name, site in trace.nodes.items():
            if site["type"] == "sample":
                log_w = log_w + sign * _per_datapoint(name, site, nesting, data_plate, shape)
    return log_w


class _ReweightPath(torch.autograd.Function):
    """Identity in the forward pass; in the backward pass the gradient is multiplied by the
    normalized importance weights ``holder["weights"]`` (``[K, N]``, viewed as ``view``), set
    once the log-weights are known: the second w~_k of the DReG estimator."""

    @staticmethod
    def forward(ctx, value: torch.Tensor, holder: dict, view: tuple[int, ...]) -> torch.Tensor:
        ctx.holder, ctx.view = holder, view
        return value.view_as(value)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.holder["weights"].reshape(ctx.view), None, None


class _Call(nn.Module):
    """Calls ``fn`` with ``owner`` as a sub-module (so ``torch.func.functional_call`` can
    substitute the owner's parameters while ``fn`` runs)."""

    def __init__(self, owner: nn.Module, fn: Callable) -> None:
        super().__init__()
        self.owner = owner
        self.fn = fn

    def forward(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


def doubly_reparameterized_log_weights(
    owner: nn.Module,
    model: Callable,
    guide: Callable,
    x: torch.Tensor,
    num_samples: int,
    *args,
    data_plate: str = "data",
    max_plate_nesting: int | None = None,
    **kwargs,
) -> tuple[torch.Tensor, dict]:
    """The log-weights of :func:`log_importance_weights`, wired for the DReG estimator.

    The guide draws z_k = g_phi(eps_k, x) with its live parameters; the model scores
    log p(x, z_k) with live parameters; the guide re-scores log q(z_k | x) with ``owner``'s
    parameters held fixed (so phi reaches log q only through z_k). Every draw passes through
    a gate that multiplies its backward gradient by w~_k, read from the returned holder's
    ``"weights"`` (``[K, N]``, which the caller sets before the backward pass). Then the
    gradient of sum_k w~_k log w_k is the model's IWAE gradient plus the guide's DReG one.
    Returns ``(log_w, holder)``.
    """
    if max_plate_nesting is None:
        max_plate_nesting = guess_max_plate_nesting(model, guide, x, *args, **kwargs)
    nesting = max(max_plate_nesting, 1)
    live = poutine.trace(_vectorized(guide, num_samples, nesting)).get_trace(x, *args, **kwargs)
    holder: dict = {}
    gated = live.copy()
    for name, site in live.nodes.items():
        if site["type"] != "sample" or site["is_observed"] or site_is_subsample(site):
            continue
        frames = {f.name: f for f in site["cond_indep_stack"] if f.vectorized}
        value = site["value"]
        batch_dims = value.dim() - site["fn"].event_dim
        if data_plate not in frames or batch_dims != nesting + 1:
            raise ValueError(
                f"iwae-dreg weighs each draw by its own data point: site {name!r} must lie in "
                f"the plate {data_plate!r} with a full batch shape, got {tuple(value.shape)}"
            )
        view = [1] * batch_dims + [1] * site["fn"].event_dim
        view[0] = num_samples
        view[batch_dims + frames[data_plate].dim] = len(x)
        gated.nodes[name] = {**site, "value": _ReweightPath.apply(value, holder, tuple(view))}
    fixed = {k: p.detach() for k, p in owner.named_parameters()}
    register = getattr(owner, "register_parameters", None)
    if register is not None:  # the re-scoring must not touch Pyro's parameter store
        owner.register_parameters = False
    try:
        replayed = poutine.replay(_vectorized(guide, num_samples, nesting), trace=gated)
        rescored = torch.func.functional_call(
            _Call(owner, poutine.trace(replayed).get_trace),
            {f"owner.{k}": v for k, v in fixed.items()},
            (x, *args),
            kwargs,
        )
    finally:
        if register is not None:
            owner.register_parameters = register
    model_trace = poutine.trace(
        poutine.replay(_vectorized(model, num_samples, nesting), trace=gated)
    ).get_trace(x, *args, **kwargs)
    return _log_weights(model_trace, rescored, nesting, data_plate, x, num_samples), holder


def pareto_khat(log_weights: torch.Tensor) -> torch.Tensor:
    """Pareto k-hat of each column of ``[K, N]`` log-weights.

    As in PSIS (Vehtari et al.; ArviZ's ``_psislw``): the tail is the largest
    M = ceil(min(0.2 K, 3 sqrt(K))) weights that exceed the cutoff max(w_(K-M), 1e-15 max w),
    and Pyro's ``fit_generalized_pareto`` fits the exceedances. Returns -inf where the weights
    are flat (all equal up to rounding, as with an exact posterior), +inf where 4 or fewer
    weights exceed the cutoff (a few weights dominate: unreliable), NaN when K < 50 (too few
    samples to fit). (Pyro's own ``psis_diagnostic`` keeps all M tail values even when the
    1e-15 floor sets the cutoff, and then fits negative exceedances.)
    """
    k_total, n = log_weights.shape
    if k_total < MIN_SAMPLES_FOR_KHAT:
        return torch.full((n,), float("nan"), dtype=torch.float64)
    num_tail = int(math.ceil(min(0.2 * k_total, 3.0 * math.sqrt(k_total))))
    # "equal" up to the rounding of the input's dtype at the weights' magnitude
    flat_tol = 64 * torch.finfo(log_weights.dtype).eps * (1 + log_weights.abs().max(0).values)
    lw = log_weights.double() - log_weights.double().max(0, keepdim=True).values
    lw = lw.sort(dim=0).values.cpu()
    flat_tol = flat_tol.double().cpu()
    khat = torch.empty(n, dtype=torch.float64)
    for j in range(n):
        if -lw[-num_tail - 1, j].item() <= flat_tol[j].item():  # the largest weights are equal
            khat[j] = float("-inf")
            continue
        cutoff = max(math.log(1.0e-15), lw[-num_tail - 1, j].item())
        tail = lw[-num_tail:, j]
        tail = tail[tail > cutoff]
        if len(tail) <= 4:
            khat[j] = float("inf")
        else:
            khat[j] = fit_generalized_pareto(tail.exp() - math.exp(cutoff))[0]
    return khat


def mean_and_se(values: torch.Tensor) -> tuple[float, float]:
    """The mean over data points and its standard error sd / sqrt(n) (NaN for one point)."""
    t = values.double()
    n = len(t)
    return t.mean().item(), t.std().item() / math.sqrt(n) if n > 1 else float("nan")


def _finite(value: float) -> float | None:
    """JSON has no NaN: unknown values become None."""
    return value if math.isfinite(value) else None


@dataclass
class MarginalEstimate:
    """Per-data-point results of :func:`log_marginal` (tensors of shape ``[N]``, CPU)."""

    log_px: torch.Tensor
    elbo: torch.Tensor
    ess: torch.Tensor
    khat: torch.Tensor
    num_samples: int

    @property
    def mc_se(self) -> torch.Tensor:
        """Monte Carlo standard error of each log p(x) estimate: sqrt(1/ESS - 1/K) (the delta
        method; NaN for K = 1, where one sample cannot measure its own spread)."""
        if self.num_samples < 2:
            return torch.full_like(self.ess, float("nan"))
        return (1.0 / self.ess - 1.0 / self.num_samples).clamp(min=0).sqrt()

    def summary(self, data_dim: int | None = None, log_levels: float = 0.0) -> ISEvaluation:
        """Means over data points with standard errors, diagnostics, and bits per dimension:
        the record ``evaluation.json`` keeps, without what was evaluated (its header).

        ``log_levels``: for dequantized continuous data, ``log(number of grey levels)``, so that
        bits per dimension refer to the discrete images: bpd = (-log p + D log L) / (D log 2).
        """
        n = len(self.log_px)
        log_px, log_px_se = mean_and_se(self.log_px)
        elbo, elbo_se = mean_and_se(self.elbo)
        gap, gap_se = mean_and_se(self.log_px - self.elbo)
        finite_k = self.khat[torch.isfinite(self.khat)]
        k_known = not torch.isnan(self.khat).all()
        above = int((self.khat > KHAT_THRESHOLD).sum()) if k_known else None
        offset, scale = (data_dim or 0) * log_levels, (data_dim or 0) * math.log(2)
        return ISEvaluation(
            method="is",
            num_examples=n,
            num_samples=self.num_samples,
            log_px=log_px,
            log_px_se=_finite(log_px_se),
            log_px_mc_se=_finite(self.mc_se.double().pow(2).sum().sqrt().item() / n),
            elbo=elbo,
            elbo_se=_finite(elbo_se),
            gap=gap,
            gap_se=_finite(gap_se),
            ess_mean=self.ess.double().mean().item(),
            ess_median=self.ess.double().median().item(),
            ess_min=self.ess.double().min().item(),
            khat_mean=finite_k.mean().item() if len(finite_k) else None,
            khat_max=finite_k.max().item() if len(finite_k) else None,
            khat_infinite=int((self.khat == float("inf")).sum()),
            khat_above=above,
            reliable=above == 0 if k_known else None,
            bits_per_dim=(offset - log_px) / scale if data_dim else None,
            elbo_bits_per_dim=(offset - elbo) / scale if data_dim else None,
        )


@torch.no_grad()
def log_marginal(
    model: Callable,
    guide: Callable,
    x: torch.Tensor,
    num_samples: int = 5000,
    *args,
    batch_size: int | None = None,
    particle_chunk: int | None = None,
    max_rows: int = 16384,
    data_plate: str = "data",
    max_plate_nesting: int | None = None,
    diagnostics: bool = True,
    seed: int | None = None,
    index_offset: int = 0,
    progress: bool = False,
    **kwargs,
) -> MarginalEstimate:
    """Importance-sampled log p(x_n) for every row of ``x``, with the guide as proposal.

    Args:
        model, guide: Pyro programs called as ``fn(x_batch, *args, **kwargs)``, whose sample
            sites all lie in ``pyro.plate(data_plate, len(x_batch))``.
        x: data, one data point per row of the first dimension.
        num_samples: K, importance samples per data point.
        batch_size: data points per pass (default: ``min(len(x), 100)``).
        particle_chunk: particles per vectorized pass (default: ``max_rows // batch_size``),
            so that one pass handles at most about ``max_rows`` (particle, data point) pairs.
        diagnostics: compute Pareto k-hat (a per-point fit; ESS is always computed).
        seed: seed the draws (the global RNG state is restored afterwards). The batch whose
            first data point has index g draws from ``derived_seed(seed, g)`` (g = 0: from
            ``seed`` itself), so the per-point results do not depend on how the data are split
            into shards (for several processes) as long as shard boundaries are multiples of
            ``batch_size``.
        index_offset: the index of ``x[0]`` in the whole data set (for a shard of it).
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples}")
    n = len(x)
    if n == 0:
        raise ValueError("x holds no data points")
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise ValueError(
            f"x holds {int((~torch.isfinite(x)).sum())} NaN or infinite values: log p(x) of such "
            "data is undefined; remove or impute them"
        )
    batch_size = min(n, batch_size or 100)
    chunk = min(num_samples, particle_chunk or max(1, max_rows // batch_size))
    starts = range(0, n, batch_size)
    log_pxs, elbos, esss, khats = [], [], [], []  # per batch of points, on the CPU
    validate = is_validation_enabled()
    if max_plate_nesting is None:  # its draws never touch the estimate's streams
        with isolated_rng():
            max_plate_nesting = guess_max_plate_nesting(
                model, guide, x[:batch_size], *args, **kwargs
            )
    with seeded_rng(seed):
        bar = tqdm(
            total=len(starts) * math.ceil(num_samples / chunk),
            desc=f"log p(x), K={num_samples}",
            unit="pass",
            disable=not progress,
            mininterval=0.5,
            dynamic_ncols=True,
        )
        with bar:
            for start in starts:
                xb = x[start : start + batch_size]
                if seed is not None and index_offset + start != 0:
                    torch.manual_seed(derived_seed(seed, index_offset + start))
                pieces = []
                for k0 in range(0, num_samples, chunk):
                    # Pyro's checks (support, shapes) on the first pass only, as in training
                    first = start == 0 and k0 == 0
                    with pyro.validation_enabled(first and validate):
                        pieces.append(
                            log_importance_weights(  # under log_marginal's no_grad
                                model,
                                guide,
                                xb,
                                min(chunk, num_samples - k0),
                                *args,
                                data_plate=data_plate,
                                max_plate_nesting=max_plate_nesting,
                                **kwargs,
                            )
                        )
                    bar.update(1)
                raw = torch.cat(pieces)  # [K, b], in the model's dtype
                log_w = raw.double()
                lse = torch.logsumexp(log_w, 0)
                log_pxs.append((lse - math.log(num_samples)).cpu())
                elbos.append(log_w.mean(0).cpu())
                esss.append((2 * lse - torch.logsumexp(2 * log_w, 0)).exp().cpu())
                nan = torch.full((len(xb),), float("nan"), dtype=torch.float64)
                # k-hat from the weights in their own precision ("flat": equal up to its rounding)
                khats.append(pareto_khat(raw) if diagnostics else nan)
    return MarginalEstimate(
        log_px=torch.cat(log_pxs),
        elbo=torch.cat(elbos),
        ess=torch.cat(esss),
        khat=torch.cat(khats),
        num_samples=num_samples,
    )
