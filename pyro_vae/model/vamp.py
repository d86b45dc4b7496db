"""The VampPrior (Tomczak & Welling 2018): p(z) = (1/K) sum_k q(z | u_k), the guide's own
posteriors at K learned pseudo-inputs, and the mixture of posteriors it evaluates (contract:
:class:`pyro_vae.model.parts.Prior`; registered as ``vamp`` in :mod:`.priors`)."""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from torch import nn

from ..config.capabilities import guide_density_problem, prior_density_use
from ..errors import ConfigError
from .parts import Prior


def _diagonal_normal(d: dist.Distribution) -> torch.distributions.Normal | None:
    """The ``Normal`` inside ``Normal(loc, scale).to_event(1)`` with parameters of shape
    ``(K, D)`` (K components of a mixture with no batch shape), else ``None``."""
    if (
        isinstance(d, torch.distributions.Independent)
        and d.reinterpreted_batch_ndims == 1
        and type(d.base_dist) in (dist.Normal, torch.distributions.Normal)
        and d.base_dist.loc.dim() == 2
        and d.base_dist.scale.dim() == 2
        and d.base_dist.loc.device.type in ("cpu", "cuda")  # float64 below
    ):
        return d.base_dist
    return None


class _MixtureOfPosteriors(dist.MixtureSameFamily):
    """``MixtureSameFamily`` that expands z over the K components before calling the component
    log-density, so components with context-conditioned parameters (flows) broadcast.

    With diagonal Gaussian components (the diagonal guide's posteriors) the log-density skips
    the ``(..., K, D)`` tensors: with precisions lambda = 1 / sigma^2,
    sum_d lambda_kd (z_d - mu_kd)^2 = z^2 . lambda_k - 2 z . (mu_k lambda_k) + mu_k^2 . lambda_k,
    two matrix products. They are taken in float64: the three terms cancel where sigma is small,
    and in float32 the result would only be as accurate as the generic path's (errors up to
    0.04 nats at sigma = 0.01); in float64 it is exact to 1e-9.
    """

    matmul_density = True
    """Use the matrix-product log-density where the components allow it (off: the generic
    ``MixtureSameFamily`` path, for benchmarks and tests)."""
    _unexpanded: torch.distributions.Normal | None = None
    """The (K, D) diagonal components before Pyro's plates expanded the mixture."""

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        x = super()._pad(x)
        k = self.component_distribution.batch_shape[-1]
        return x.expand(*x.shape[:-2], k, x.shape[-1])

    def _diagonal_components(self) -> torch.distributions.Normal | None:
        if not self.matmul_density:
            return None
        if self._unexpanded is not None:
            return self._unexpanded
        return _diagonal_normal(self.component_distribution)

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape, _instance)
        new.matmul_density = self.matmul_density
        new._unexpanded = self._diagonal_components()
        return new

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        normal = self._diagonal_components()
        if normal is None:
            return super().log_prob(x)
        if self._validate_args:
            self._validate_sample(x)
        z = x.double()
        loc, precision = normal.loc.double(), normal.scale.double().pow(-2)
        squares = (
            (z * z) @ precision.T - 2.0 * z @ (loc * precision).T + (loc * loc * precision).sum(-1)
        )  # (..., K): sum_d lambda_kd (z_d - mu_kd)^2
        log_norm = normal.scale.log().sum(-1) + 0.5 * x.shape[-1] * math.log(2 * math.pi)
        log_components = (-0.5 * squares).to(x.dtype) - log_norm
        log_weights = torch.log_softmax(self.mixture_distribution.logits, dim=-1)
        log_px = torch.logsumexp(log_components + log_weights, dim=-1)
        return log_px.expand(torch.broadcast_shapes(log_px.shape, self.batch_shape))


def mixture_of_posteriors(
    components: dist.Distribution, device: torch.device, matmul_density: bool = True
) -> _MixtureOfPosteriors:
    """(1/K) sum_k components_k: the equal-weight mixture of K posteriors (``batch_shape ==
    (K,)``, on ``device``), with the matrix-product log-density where they allow it
    (``matmul_density``)."""
    weights = torch.zeros(components.batch_shape, device=device)
    mixture = _MixtureOfPosteriors(dist.Categorical(logits=weights), components)
    mixture.matmul_density = matmul_density
    return mixture


def vamp_flow_problem(prior_name: str, guide: object) -> str | None:
    """The one message for a VampPrior given a flow guide, one whose density away from its own
    draws needs a transform's inverse (``Guide.density_by_inverse``), else ``None``. It names
    the pairs that work."""
    if not getattr(guide, "density_by_inverse", False):
        return None
    return (
        f"the prior {prior_name} scores every z of a batch under the guide's posterior at each "
        f"of its K pseudo-inputs; the guide {type(guide).__qualname__} has that density only "
        "through its flow's inverse, B x K inverses per step (for an IAF each is latent_dim "
        "sequential network passes: seconds and gigabytes per step): use --guide diagonal or "
        "full with --prior vamp, or --guide flow with --prior two-layer-vamp or mog"
    )


def vamp_top_down_problem(prior_name: str, guide: object) -> str | None:
    """The one message for a VampPrior given a guide whose density at a point it did not draw
    takes a network pass per point (``Guide.density_by_network``: the top-down guide's
    q(z1 | x, z2) at every z2), else ``None``."""
    if not getattr(guide, "density_by_network", False):
        return None
    return (
        f"the prior {prior_name} scores every z of a batch under the guide's posterior at each "
        f"of its K pseudo-inputs; the guide {type(guide).__qualname__} needs a network pass for "
        "each of those B x K points (23x the tensor elements of the default step on digits): use "
        "--prior hierarchical-vamp with --guide top-down (the VampPrior on the top layer only)"
    )


class VampPrior(Prior):
    """The VampPrior (Tomczak & Welling 2018): p(z) = (1/K) sum_k q(z | u_k), the guide's own
    posteriors at K learned pseudo-inputs u_k = sigmoid(a_k) in [0, 1]^D.

    The guide is attached after construction (:meth:`attach_guide`); it is not registered as a
    sub-module here, so its parameters are owned, saved and optimized once, by the VAE.

    What a training step computes: log p(z_b) = logsumexp_k log q(z_b | u_k) - log K for each
    of the B codes z_b of the batch (times the particles), so q is evaluated at B * K points
    none of which it drew. With a Gaussian guide that is closed-form: for the diagonal guide
    two (B, latent_dim) x (latent_dim, K) matrix products (:class:`_MixtureOfPosteriors`), for
    the full one B * K triangular solves. A flow guide (``density_by_inverse``) is refused:
    z ~ q(z | x) is
    z = f_T o ... o f_1(z_0) with every f_t conditioned on the context h(x), so

        log q(z | u_k) = log N(z_0^(k); mu_k, sigma_k^2) - sum_t log |det df_t/dz_(t-1)|,
        z_0^(k) = f_1^-1 o ... o f_T^-1(z)  with the transforms conditioned on h(u_k),

    a different inverse for every pair (z_b, u_k): nothing is shared across b or k. An IAF's
    inverse has no closed form; it is latent_dim sequential passes of its autoregressive
    network. On ``digits`` with the defaults (B = 128, K = 100, latent_dim 20, 2 IAFs) that is
    2 * 20 passes over 12,800 rows a step, all kept for the gradient: 588 million tensor
    elements allocated per step against 1.3 million for the default model; 4.3 s and 4.6 GB
    resident per step against a few ms (``experiments/bench_grid.py``, on a shared 2-core
    machine). No exact form is cheap: even an inverse that reuses the context's share of the
    network and updates its hidden layer one coordinate at a time costs about a full network
    pass per pair, K = 100 times the flow's own work, and keeps latent_dim * B * K hidden
    vectors (0.8 GB here) for the gradient. Cheaper forms are other models
    (the flows' base Gaussians alone drop the flow from p(z)); ``two-layer-vamp`` puts a
    VampPrior on a top layer whose posterior is Gaussian, and so takes a flow guide at the
    price of a Gaussian one.
    """

    uses_guide = True
    matmul_density = True
    """With the diagonal guide, log p(z) by two matrix products instead of (..., K, D) tensors
    (1.6x faster IWAE-10 training steps with 100 pseudo-inputs; set ``False`` for the generic
    ``MixtureSameFamily`` log-density: ``experiments/bench_vamp_prior.py`` compares them)."""

    def __init__(self, latent_dim: int, data_dim: int, pseudo_inputs: int = 100) -> None:
        super().__init__(latent_dim)
        if (
            not isinstance(pseudo_inputs, int)
            or isinstance(pseudo_inputs, bool)
            or pseudo_inputs < 1
        ):
            raise ValueError(f"pseudo_inputs must be a positive integer, got {pseudo_inputs!r}")
        self.pseudo_logits = nn.Parameter(-2.0 + 0.5 * torch.randn(pseudo_inputs, data_dim))
        object.__setattr__(self, "_guide", None)

    def attach_guide(self, guide) -> None:
        """Use ``guide``'s posteriors as the components; a guide with no density away from its
        own draws (a planar flow), or one only through a flow's inverse (an IAF), is refused
        (one message each)."""
        name = type(self).__name__
        problem = guide_density_problem(prior_density_use(name), guide)
        problem = problem or vamp_flow_problem(name, guide) or vamp_top_down_problem(name, guide)
        if problem:
            raise ConfigError(problem)
        self._attach(guide)

    def _attach(self, guide) -> None:
        object.__setattr__(self, "_guide", guide)

    @property
    def pseudo_inputs(self) -> torch.Tensor:
        """The K pseudo-inputs u_k: sigmoid(a_k) in [0, 1]^D, where images live. For a guide
        that sees log(1 + x) of counts (``input_transform == "log1p"``), u_k = exp(a_k), any
        positive "counts", so that the encoder sees log(1 + u_k) = softplus(a_k): the whole
        non-negative range its inputs log(1 + x) take (a sigmoid would confine the
        pseudo-inputs to counts below 1, far from most data)."""
        guide = self._guide
        if guide is not None and getattr(guide, "input_transform", "as-is") == "log1p":
            return torch.exp(self.pseudo_logits)
        return torch.sigmoid(self.pseudo_logits)

    def forward(self) -> dist.Distribution:
        if self._guide is None:
            raise RuntimeError("VampPrior needs attach_guide(guide) before use")
        components = self._guide(self.pseudo_inputs)
        return mixture_of_posteriors(components, self.pseudo_logits.device, self.matmul_density)
