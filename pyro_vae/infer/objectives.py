"""Training objectives: Pyro's ELBOs, the importance-weighted bound, and KL weighting.

* ``trace``: ``Trace_ELBO``, the Monte Carlo ELBO E_q[log p(x, z) - log q(z|x)];
* ``meanfield``: ``TraceMeanField_ELBO``, the same with KL(q || p) computed analytically where
  a closed form exists (Gaussian guide and prior), a lower-variance gradient;
* ``iwae``: the importance-weighted bound (Burda et al. 2015),
  sum_n log (1/K) sum_k p(x_n, z_nk) / q(z_nk | x_n), which tightens towards log p(x) as K
  grows. Pyro's ``RenyiELBO(alpha=0)`` is this bound, but it applies a data plate's
  subsampling scale s = N/B to each log-weight before the log-sum-exp, so on minibatches it
  optimizes log (1/K) sum_k w_k^s, which by the power-mean inequality overstates
  s log (1/K) sum_k w_k; :class:`IWAE` scales after the log-sum-exp;
* ``iwae-dreg``: the same bound with the doubly reparameterized gradient of the guide
  (Tucker et al. 2018, :class:`IWAE_DReG`): same value and expected gradient, but the guide's
  gradient does not lose its signal as K grows (Rainforth et al. 2018).

KL weighting (beta-VAE, warm-up) multiplies the log-density of every *latent* site, in model
and guide, by a weight (:class:`LatentScaleMessenger`), so the objective becomes
E_q[log p(x|z)] - weight * KL(q(z|x) || p(z)). Pyro's ``poutine.scale`` would scale the
likelihood too, and refuses a weight <= 0: warm-up starts at a small positive weight.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import warnings
from collections.abc import Callable

import torch
from pyro.infer import ELBO, JitTrace_ELBO
from pyro.poutine.messenger import Messenger
from torch import nn

from ..config.names import SUPPORTS_JIT, SUPPORTS_KL_WEIGHT  # noqa: F401  (re-exported)
from ..config.objectives import OBJECTIVES, Objective, objective
from .marginal import doubly_reparameterized_log_weights, log_importance_weights


class IWAE(ELBO):
    """The importance-weighted bound with ``num_particles`` = K samples per data point.

    Per data point: log (1/K) sum_k w_nk with unscaled log-weights (``log_importance_weights``);
    the sum over the minibatch is then scaled by N / B when the model is called with
    ``num_data=N``. Gradients flow through the guide's reparameterized samples.
    """

    def __init__(self, num_particles: int = 5, max_plate_nesting: int | None = 1) -> None:
        super().__init__(num_particles=num_particles)
        self.iwae_plate_nesting = max_plate_nesting

    def differentiable_loss(self, model, guide, x, *args, **kwargs) -> torch.Tensor:
        log_w = log_importance_weights(
            model,
            guide,
            x,
            self.num_particles,
            *args,
            max_plate_nesting=self.iwae_plate_nesting,
            **kwargs,
        )
        bound = torch.logsumexp(log_w, dim=0) - math.log(self.num_particles)
        num_data = kwargs.get("num_data") or len(x)
        return -(num_data / len(x)) * bound.sum()

    def _get_trace(self, model, guide, args, kwargs):
        raise NotImplementedError("IWAE vectorizes its particles in one trace")

    def loss(self, model, guide, *args, **kwargs) -> float:
        with torch.no_grad():
            return self.differentiable_loss(model, guide, *args, **kwargs).item()

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        """For ``pyro.infer.SVI``: backpropagate and return the loss."""
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        loss.backward()
        return loss.item()


class IWAE_DReG(IWAE):
    """The importance-weighted bound with the doubly reparameterized gradient estimator
    (DReG; Tucker, Lawson, Gu & Maddison 2018).

    With normalized weights w~_k = w_k / sum_j w_j, the IWAE gradient splits into the model's
    part, sum_k w~_k grad_theta log p(x, z_k) at fixed z, and the guide's part, which DReG
    rewrites with the score-function term removed:

        grad_phi = E_eps[ sum_k w~_k^2 (d log w_k / d z_k) (d z_k / d phi) ],

    log w_k = log p(x, z_k) - log q(z_k | x) with q's parameters held fixed. Same value and
    expectation as :class:`IWAE`; with the plain estimator the guide's gradient signal-to-noise
    ratio falls as 1/sqrt(K), with this one it does not. The model and guide must be methods of
    one ``nn.Module`` (as the :class:`~pyro_vae.VAE`'s are), whose parameters are held fixed
    while q is re-scored; parameters a guide reaches through the prior's parts (the two-layer
    prior's q(z2 | z)) are covered, as they are the same module's. The guide is run twice per
    step, so it must be deterministic given its noise: no dropout, no batch-norm statistics, no
    ``pyro.param`` outside the module; and it needs a density at its own draws evaluated anew
    (not a planar flow, which is not invertible).
    """

    def loss(self, model, guide, *args, **kwargs) -> float:
        """The bound's value (the same as :class:`IWAE`'s: no re-scoring needed)."""
        with torch.no_grad():
            return IWAE.differentiable_loss(self, model, guide, *args, **kwargs).item()

    def differentiable_loss(self, model, guide, x, *args, **kwargs) -> torch.Tensor:
        owner = getattr(guide, "__self__", None)
        if not isinstance(owner, nn.Module):
            raise ValueError("iwae-dreg needs the guide to be a method of an nn.Module (a VAE)")
        log_w, bridge = doubly_reparameterized_log_weights(
            owner,
            model,
            guide,
            x,
            self.num_particles,
            *args,
            max_plate_nesting=self.iwae_plate_nesting,
            **kwargs,
        )
        weights = torch.softmax(log_w.detach(), dim=0)
        bridge["weights"] = weights  # read by the backward pass: the second w~_k on the path
        bound = torch.logsumexp(log_w, dim=0) - math.log(self.num_particles)
        surrogate = (weights * log_w).sum(0)  # gradient: sum_k w~_k grad log w_k
        num_data = kwargs.get("num_data") or len(x)
        return -(num_data / len(x)) * (surrogate + (bound - surrogate).detach()).sum()


class JitTraceELBO(JitTrace_ELBO):
    """Pyro's ``JitTrace_ELBO`` whose ``differentiable_loss`` has the ELBO's gradient.

    Pyro 1.9 returns ``loss + (surrogate - surrogate.detach())`` there: the value of the loss,
    but the gradient of loss + surrogate, which for a reparameterized guide (surrogate = loss)
    is twice the gradient of ``Trace_ELBO`` (Adam hardly notices a constant factor; plain SGD
    or gradient clipping would). Here the value is the loss and the gradient the surrogate's,
    as its own ``loss_and_grads`` backpropagates; and no NaN check forces a synchronization
    (the trainer checks the loss itself).

    PyTorch 2.10+ deprecates ``torch.jit.trace``, which this objective rests on; its
    ``FutureWarning`` is silenced here, where pyro-vae chose the API knowingly (the eager
    objective, ``--no-jit``, is the fallback), so that no default command prints it."""

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "`torch.jit.trace` is deprecated", FutureWarning)
            loss, surrogate = self.loss_and_surrogate_loss(model, guide, *args, **kwargs)
        return surrogate + (loss - surrogate).detach()


def _build(declared: Objective, particles: int, jit: bool, compiled: bool = False) -> ELBO:
    """The class its declaration names (:data:`~pyro_vae.config.objectives.OBJECTIVES`),
    given the options its ``__init__`` takes: ``particles`` samples, vectorized, one plate;
    with ``jit`` and ``compiled`` its ``torch.compile`` version where it has one."""
    path = declared.jit_implementation if jit else declared.implementation
    if jit and compiled and declared.compiled_implementation:
        path = declared.compiled_implementation
    module, _, name = path.partition(":")
    cls = getattr(importlib.import_module(module), name)
    options = dict(num_particles=particles, vectorize_particles=particles > 1, max_plate_nesting=1)
    if jit:
        options["ignore_jit_warnings"] = True
    accepted = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in options.items() if k in accepted})


ELBOS: dict[str, Callable[..., ELBO]] = {
    name: functools.partial(_build, declared) for name, declared in OBJECTIVES.items()
}
"""Training objectives by name (``--elbo``): ``factory(num_particles, jit) -> objective`` with
a ``differentiable_loss(model, guide, x, num_data=N)`` method, each made from its declaration
in :data:`pyro_vae.config.objectives.OBJECTIVES` (the class it names, what it supports)."""


def make_objective(elbo: str, particles: int, jit: bool, compiled: bool = False) -> ELBO:
    """The objective ``elbo`` with ``particles`` samples, JIT-compiled when ``jit`` (by
    ``torch.compile`` rather than TorchScript when also ``compiled`` and it has such a
    version): refused where its declaration says it has no JIT-compiled version (Pyro 1.9's
    ``JitTraceMeanField_ELBO`` caches under the wrong attribute and recompiles) or takes more
    particles."""
    declared = objective(elbo)
    if jit and not declared.jit:
        raise ValueError(f"the {elbo} objective has no JIT-compiled version")
    if particles < declared.min_particles:
        raise ValueError(f"the {elbo} objective needs at least {declared.min_particles} particles")
    return ELBOS[elbo](particles, jit, compiled)


class LatentScaleMessenger(Messenger):
    """Multiply the log-density of every latent (unobserved) sample site by ``scale``.

    Applied to both model and guide this weights the ELBO's KL term, log p(z) - log q(z|x), and
    leaves the likelihood of observed sites alone: beta-VAE (scale = beta) and KL warm-up.
    """

    def __init__(self, scale: float) -> None:
        if not (isinstance(scale, (int, float)) and scale > 0 and math.isfinite(scale)):
            raise ValueError(f"a KL weight must be a positive finite number, got {scale!r}")
        super().__init__()
        self.scale = float(scale)

    def _process_message(self, msg) -> None:
        if msg["type"] == "sample" and not msg["is_observed"]:
            msg["scale"] = self.scale * msg["scale"]


def kl_weight(epoch: int, beta: float = 1.0, warmup: int = 0) -> float:
    """The KL weight in (1-based) ``epoch``: beta * min(1, epoch / warmup); beta without warm-up.
    Always positive: the first epoch of a warm-up of W epochs uses beta / W."""
    if warmup <= 0:
        return beta
    return beta * min(1.0, epoch / warmup)


def objective_name(elbo: str, particles: int, beta: float = 1.0, warmup: int = 0) -> str:
    """What the training objective is, in words (for printouts and plot legends)."""
    return objective(elbo).describe(particles, beta, warmup)
