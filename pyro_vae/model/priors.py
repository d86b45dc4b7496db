"""Priors p(z) (contract: :class:`pyro_vae.model.parts.Prior`).

``prior()`` returns a Pyro distribution with ``batch_shape == ()`` and
``event_shape == (latent_dim,)``; the model samples it inside the data plate, which broadcasts
it over the batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn

from ..config.capabilities import guide_density_problem, prior_density_use
from ..errors import ConfigError
from .hierarchical import TopDown, gaussian, split_dims, unit_scale_start
from .nets import MLP
from .parts import Prior

_SOFTPLUS_INV_ONE = math.log(math.e - 1.0)  # softplus(x) = 1


class StandardNormalPrior(Prior):
    """p(z) = N(0, I)."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__(latent_dim)
        self.register_buffer("loc", torch.zeros(latent_dim), persistent=False)
        self.register_buffer("scale", torch.ones(latent_dim), persistent=False)

    def forward(self) -> dist.Distribution:
        return dist.Normal(self.loc, self.scale).to_event(1)


class LearnedGaussianPrior(Prior):
    """p(z) = N(mu, diag sigma^2) with learned mu and sigma = softplus(.) + 1e-4."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__(latent_dim)
        self.loc = nn.Parameter(torch.zeros(latent_dim))
        self.raw_scale = nn.Parameter(torch.full((latent_dim,), _SOFTPLUS_INV_ONE))

    def forward(self) -> dist.Distribution:
        return dist.Normal(self.loc, F.softplus(self.raw_scale) + 1e-4).to_event(1)


class MixtureOfGaussiansPrior(Prior):
    """p(z) = sum_k pi_k N(z; mu_k, diag sigma_k^2) with K learned components
    (``MixtureSameFamily``: fine for a prior, which is never sampled by reparameterization)."""

    def __init__(self, latent_dim: int, components: int = 10) -> None:
        super().__init__(latent_dim)
        if not isinstance(components, int) or isinstance(components, bool) or components < 1:
            raise ValueError(f"components must be a positive integer, got {components!r}")
        self.logits = nn.Parameter(torch.zeros(components))
        self.locs = nn.Parameter(torch.randn(components, latent_dim))
        self.raw_scales = nn.Parameter(torch.full((components, latent_dim), _SOFTPLUS_INV_ONE))

    def forward(self) -> dist.Distribution:
        components = dist.Normal(self.locs, F.softplus(self.raw_scales) + 1e-4).to_event(1)
        return dist.MixtureSameFamily(dist.Categorical(logits=self.logits), components)


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
        "each of those B x K points (23x the default step's memory on digits): use --prior "
        "hierarchical-vamp with --guide top-down (the VampPrior on the top layer only)"
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
        weights = torch.zeros(components.batch_shape, device=self.pseudo_logits.device)
        mixture = _MixtureOfPosteriors(dist.Categorical(logits=weights), components)
        mixture.matmul_density = self.matmul_density
        return mixture


class TwoLayerPrior(Prior):
    """Two stochastic layers, z2 -> z -> x (Burda et al. 2015; Tomczak & Welling's two-layer
    models): z2 ~ N(0, I) in ``top_dim`` dimensions and z | z2 ~ N(mu(z2), diag sigma(z2)^2),
    so p(z) = int p(z2) p(z | z2) dz2 is itself a continuous mixture. In the guide,
    z2 | z ~ N(m(z), diag s(z)^2) (Burda et al.'s q(z2 | z1)). Sites ``"z"`` and ``"z2"``, both
    in the data plate; p(z) has no closed form, so ``prior()`` is refused and the model samples
    both sites. ``top_hidden``: hidden widths of both small networks.
    """

    def __init__(
        self,
        latent_dim: int,
        top_dim: int | None = None,
        top_hidden: Sequence[int] = (256,),
        activation: str = "relu",
    ) -> None:
        super().__init__(latent_dim)
        top_dim = latent_dim if top_dim is None else top_dim
        if not isinstance(top_dim, int) or isinstance(top_dim, bool) or top_dim < 1:
            raise ValueError(f"top_dim must be a positive integer, got {top_dim!r}")
        self.top_dim = top_dim
        self.register_buffer("top_loc", torch.zeros(top_dim), persistent=False)
        self.conditional = MLP(top_dim, list(top_hidden), 2 * latent_dim, activation)
        self.top_encoder = MLP(latent_dim, list(top_hidden), 2 * top_dim, activation)
        for net, k in ((self.conditional, latent_dim), (self.top_encoder, top_dim)):
            with torch.no_grad():  # start with unit scales: sigma = softplus(bias) + 1e-3 = 1
                net[-1].bias[k:].fill_(math.log(math.expm1(1 - 1e-3)))

    @staticmethod
    def _gaussian(out: torch.Tensor) -> dist.Distribution:
        loc, raw = out.chunk(2, dim=-1)
        return dist.Normal(loc, F.softplus(raw) + 1e-3).to_event(1)

    def top(self) -> dist.Distribution:
        """p(z2) = N(0, I)."""
        return dist.Normal(self.top_loc, 1.0).to_event(1)

    def given_top(self, z2: torch.Tensor) -> dist.Distribution:
        """p(z | z2)."""
        return self._gaussian(self.conditional(z2))

    def forward(self) -> dist.Distribution:
        raise NotImplementedError(
            "the two-layer prior p(z) = int p(z2) p(z|z2) dz2 has no closed form; the model "
            "samples z2 and then z (sample_site), and draw() samples it"
        )

    def sample_site(self, name: str = "z") -> torch.Tensor:
        z2 = pyro.sample(f"{name}2", self.top())
        return pyro.sample(name, self.given_top(z2))

    def guide_site(self, name: str, z: torch.Tensor, x: torch.Tensor) -> None:
        pyro.sample(f"{name}2", self._gaussian(self.top_encoder(z)))

    def draw(self, num_samples: int) -> torch.Tensor:
        return self.given_top(self.top().sample((num_samples,))).sample()


class TwoLayerVampPrior(TwoLayerPrior):
    """A hierarchical VampPrior: the two-layer prior z2 -> z -> x with a VampPrior on the top
    layer instead of N(0, I) (after Tomczak & Welling's two-layer VampPrior model, in Burda et
    al.'s inference order: the guide draws z ~ q(z|x), then z2 ~ q(z2|z)). With K learned
    pseudo-inputs u_k = sigmoid(a_k) and the guide's mean code at each, m_k = E_q[z | u_k],

        p(z2) = (1/K) sum_k q(z2 | m_k),

    the guide's own top-layer posteriors at the pseudo-inputs (for a flow guide, m_k is its base
    mean pushed through the flow). Sites ``"z"`` and ``"z2"``.
    """

    uses_guide = True

    def __init__(
        self,
        latent_dim: int,
        data_dim: int,
        pseudo_inputs: int = 100,
        top_dim: int | None = None,
        top_hidden: Sequence[int] = (256,),
        activation: str = "relu",
    ) -> None:
        super().__init__(latent_dim, top_dim, top_hidden, activation)
        self.vamp = VampPrior(latent_dim, data_dim, pseudo_inputs)

    def attach_guide(self, guide) -> None:
        """Its components are Gaussians of the top encoder, not the guide's posteriors: a flow
        guide serves (only its code at each pseudo-input is used, one forward pass each)."""
        problem = guide_density_problem(prior_density_use(type(self).__name__), guide)
        if problem:
            raise ConfigError(problem)
        self.vamp._attach(guide)

    def top(self) -> dist.Distribution:
        """p(z2) = (1/K) sum_k q(z2 | m_k), m_k the guide's code at pseudo-input u_k."""
        codes = _representative_code(self.vamp._guide(self.vamp.pseudo_inputs))
        components = self._gaussian(self.top_encoder(codes))
        weights = torch.zeros(components.batch_shape, device=codes.device)
        return _MixtureOfPosteriors(dist.Categorical(logits=weights), components)


class HierarchicalPrior(Prior):
    """Two stochastic layers that both feed the decoder (Tomczak & Welling 2018's hierarchical
    VAE; :mod:`~pyro_vae.model.hierarchical`): z = (z1, z2), z2 the last ``top_dim``
    coordinates (default ``latent_dim // 2``), with

        p(z) = p(z2) p(z1 | z2),  p(z2) = N(0, I),  p(z1 | z2) = N(mu(z2), diag sigma(z2)^2),

    a closed-form density at the one site ``"z"`` (:class:`TopDown`), so it takes any guide
    over ``latent_dim`` coordinates; with ``--guide top-down`` the guide infers z2 first, then
    z1 given x and z2. ``top_hidden``: hidden widths of the network for p(z1 | z2).
    """

    def __init__(
        self,
        latent_dim: int,
        top_dim: int | None = None,
        top_hidden: Sequence[int] = (256,),
        activation: str = "relu",
    ) -> None:
        super().__init__(latent_dim)
        self.lower_dim, self.top_dim = split_dims(latent_dim, top_dim)
        self.register_buffer("top_loc", torch.zeros(self.top_dim), persistent=False)
        self.conditional = MLP(self.top_dim, list(top_hidden), 2 * self.lower_dim, activation)
        unit_scale_start(self.conditional, self.lower_dim)

    def top(self) -> dist.Distribution:
        """p(z2) = N(0, I)."""
        return dist.Normal(self.top_loc, 1.0).to_event(1)

    def given_top(self, z2: torch.Tensor) -> dist.Distribution:
        """p(z1 | z2)."""
        return gaussian(self.conditional(z2))

    def forward(self) -> dist.Distribution:
        return TopDown(self.top(), self.given_top, self.lower_dim)


def top_posterior_problem(prior_name: str, top_dim: int, guide: object) -> str | None:
    """The one message for a hierarchical VampPrior given a guide without a top-layer
    posterior q(z2 | x) of ``top_dim`` dimensions (``top_posterior``), else ``None``."""
    if not callable(getattr(guide, "top_posterior", None)):
        return (
            f"the prior {prior_name} mixes the guide's top-layer posterior q(z2|u) at its "
            f"pseudo-inputs; the guide {type(guide).__qualname__} has none (no top_posterior): "
            "use --guide top-down"
        )
    if getattr(guide, "top_dim", None) != top_dim:
        return (
            f"the prior {prior_name}'s top layer has {top_dim} dimensions, the guide's "
            f"{getattr(guide, 'top_dim', None)}: give both the same top_dim"
        )
    return None


class HierarchicalVampPrior(HierarchicalPrior):
    """:class:`HierarchicalPrior` with the VampPrior on the top layer, as Tomczak & Welling's
    hierarchical VampPrior VAE: with K learned pseudo-inputs u_k,

        p(z2) = (1/K) sum_k q(z2 | u_k),   p(z1 | z2) = N(mu(z2), diag sigma(z2)^2),

    q(z2 | u) the guide's top-layer posterior: it needs ``--guide top-down`` (a guide with
    ``top_posterior`` and the same ``top_dim``). log p(z2) is the VampPrior's two matrix
    products (the top posterior is a diagonal Gaussian).
    """

    uses_guide = True

    def __init__(
        self,
        latent_dim: int,
        data_dim: int,
        pseudo_inputs: int = 100,
        top_dim: int | None = None,
        top_hidden: Sequence[int] = (256,),
        activation: str = "relu",
    ) -> None:
        super().__init__(latent_dim, top_dim, top_hidden, activation)
        self.vamp = VampPrior(self.top_dim, data_dim, pseudo_inputs)

    def attach_guide(self, guide) -> None:
        """Mix ``guide.top_posterior`` at the pseudo-inputs; any other guide is refused."""
        problem = top_posterior_problem(type(self).__name__, self.top_dim, guide)
        if problem:
            raise ConfigError(problem)
        self.vamp._attach(guide)

    def top(self) -> dist.Distribution:
        """p(z2) = (1/K) sum_k q(z2 | u_k)."""
        components = self.vamp._guide.top_posterior(self.vamp.pseudo_inputs)
        weights = torch.zeros(components.batch_shape, device=self.vamp.pseudo_logits.device)
        mixture = _MixtureOfPosteriors(dist.Categorical(logits=weights), components)
        mixture.matmul_density = self.vamp.matmul_density
        return mixture


def _representative_code(q: dist.Distribution) -> torch.Tensor:
    """A deterministic code of q(z|x): its mean, or for a flow (no closed-form mean) its base
    distribution's mean pushed through the transforms, or for a top-down guide the mean of
    q(z2|x) and the code of q(z1|x, z2) there."""
    try:
        # "+ 0 * stddev" changes neither value nor gradient; without it TorchScript's autodiff
        # (the JIT-compiled ELBO) mis-sizes the gradient of the diagonal guide's output, whose
        # scale half would otherwise be unused here
        return q.mean + 0 * q.stddev
    except NotImplementedError:
        pass
    if isinstance(q, TopDown):  # the top layer's code, then the lower layer's given it
        top = _representative_code(q.top)
        return torch.cat([_representative_code(q.lower(top)), top], dim=-1)
    if isinstance(q, torch.distributions.TransformedDistribution):
        code = _representative_code(q.base_dist)
        for transform in q.transforms:
            code = transform(code)
        return code
    raise ConfigError(
        f"the two-layer VampPrior needs a guide whose q(z|x) has a mean or is a flow, not "
        f"{type(q).__name__}"
    )


PRIORS: dict[str, type[Prior]] = {
    "normal": StandardNormalPrior,
    "learned": LearnedGaussianPrior,
    "mog": MixtureOfGaussiansPrior,
    "vamp": VampPrior,
    "two-layer": TwoLayerPrior,
    "two-layer-vamp": TwoLayerVampPrior,
    "hierarchical": HierarchicalPrior,
    "hierarchical-vamp": HierarchicalVampPrior,
}
"""Built-in priors by short name (``--prior``)."""
