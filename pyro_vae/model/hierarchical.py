"""Two stochastic layers that both feed the decoder, inferred top-down (Tomczak & Welling 2018's
hierarchical VAE; the ladder order of Sønderby et al. 2016).

The code z the decoder sees is the pair z = (z1, z2), z1 the first ``latent_dim - top_dim``
coordinates and z2 the last ``top_dim``::

    model   z2 ~ p(z2)            z1 | z2 ~ p(z1 | z2)       x | z1, z2 ~ p(x | z1, z2)
    guide   z2 ~ q(z2 | x)        z1 | x, z2 ~ q(z1 | x, z2)

so p(x | z1, z2) is any decoder on the whole of z (the decoder "conditioned on both layers"),
and both p(z) = p(z2) p(z1 | z2) and q(z | x) = q(z2 | x) q(z1 | x, z2) have closed-form
densities at any z: each is one :class:`TopDown` distribution at the one site ``"z"``. Every
estimator (IS, AIS, BDMC, the gaps) and objective (ELBO, IWAE, DReG) works on them unchanged.
This differs from :class:`~pyro_vae.model.priors.TwoLayerPrior` (Burda et al.'s order), where
the decoder sees z1 only and the guide infers z2 from z1 at a second site.

The priors over this z are :class:`HierarchicalPrior` (p(z2) = N(0, I), ``--prior
hierarchical``) and :class:`HierarchicalVampPrior` (p(z2) the VampPrior of the guide's top
layer, ``--prior hierarchical-vamp``); the guide is :class:`TopDownGuide` (``--guide
top-down``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.distributions import TorchDistribution, constraints

from ..errors import ConfigError
from .conv import encoder_body
from .nets import MLP
from .parts import Guide, Prior
from .vamp import VampPrior, mixture_of_posteriors

_UNIT_SCALE_BIAS = math.log(math.expm1(1 - 1e-3))
"""A raw scale s with softplus(s) + 1e-3 = 1."""


def split_dims(latent_dim: int, top_dim: int | None) -> tuple[int, int]:
    """(lower, top): the sizes of z1 and z2 in a code of ``latent_dim`` coordinates
    (``top_dim`` default: half, rounded down)."""
    top = latent_dim // 2 if top_dim is None else top_dim
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top < latent_dim:
        raise ValueError(
            f"top_dim must be an integer from 1 to latent_dim - 1 = {latent_dim - 1} "
            f"(two layers need latent_dim >= 2), got {top!r}"
        )
    return latent_dim - top, top


def gaussian(out: torch.Tensor, min_scale: float = 1e-3) -> dist.Distribution:
    """N(mu, diag sigma^2) from a network's output (mu, raw sigma), sigma = softplus + min."""
    loc, raw = out.chunk(2, dim=-1)
    return dist.Normal(loc, F.softplus(raw) + min_scale).to_event(1)


def unit_scale_start(net: MLP, dim: int) -> None:
    """Start a (mu, raw sigma) network's scales at 1 (its last layer's bias for sigma)."""
    with torch.no_grad():
        net[-1].bias[dim:].fill_(_UNIT_SCALE_BIAS)


class TopDown(TorchDistribution):
    """z = (z1, z2) with z2 ~ ``top`` and z1 | z2 ~ ``lower(z2)``::

        log p(z) = log top(z2) + log lower(z2)(z1)

    ``top``: a distribution over z2 (``event_shape == (top_dim,)``); ``lower``: maps z2 of any
    leading shape to a distribution over z1 (``event_shape == (lower_dim,)``). Reparameterized
    when both layers are (z2 first, then z1 from it, so gradients reach q(z2|x) through z1 too);
    the mean has no closed form (``mean`` raises ``NotImplementedError``).
    """

    arg_constraints: dict = {}
    support = constraints.real_vector

    def __init__(
        self,
        top: dist.Distribution,
        lower: Callable[[torch.Tensor], dist.Distribution],
        lower_dim: int,
        validate_args: bool | None = None,
    ) -> None:
        self.top = top
        self.lower = lower
        self.lower_dim = int(lower_dim)
        event = (self.lower_dim + int(top.event_shape[-1]),)
        super().__init__(top.batch_shape, torch.Size(event), validate_args=validate_args)

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return bool(self.top.has_rsample)

    def expand(self, batch_shape, _instance=None) -> TopDown:
        return TopDown(self.top.expand(batch_shape), self.lower, self.lower_dim)

    def split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z1, z2) of codes z."""
        return z[..., : self.lower_dim], z[..., self.lower_dim :]

    def rsample(self, sample_shape: tuple[int, ...] = ()) -> torch.Tensor:
        z2 = self.top.rsample(sample_shape)
        return torch.cat([self.lower(z2).rsample(), z2], dim=-1)

    def sample(self, sample_shape: tuple[int, ...] = ()) -> torch.Tensor:
        with torch.no_grad():
            z2 = self.top.sample(sample_shape)
            return torch.cat([self.lower(z2).sample(), z2], dim=-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        z1, z2 = self.split(value)
        return self.top.log_prob(z2) + self.lower(z2).log_prob(z1)


class TopDownGuide(Guide):
    """q(z | x) = q(z2 | x) q(z1 | x, z2), inferred top-down (Tomczak & Welling's hierarchical
    VAE): one network on x gives q(z2 | x) = N(mu2(x), diag sigma2(x)^2) and a context h(x);
    a second one gives q(z1 | x, z2) = N(mu1(h, z2), diag sigma1(h, z2)^2). z = (z1, z2),
    z2 the last ``top_dim`` coordinates (default ``latent_dim // 2``); the top layer's
    posterior alone is :meth:`top_posterior` (what the hierarchical VampPrior mixes).

    ``context_dim``: the size of h(x) (default 256); ``top_hidden``: hidden widths of the
    network for q(z1 | x, z2). ``encoder``, ``image_shape``, ``channels``: as the other built-in
    guides (an MLP on the pixels, or convolutions for images).
    """

    density_by_network = True

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        hidden: Sequence[int] = (400,),
        activation: str = "relu",
        top_dim: int | None = None,
        top_hidden: Sequence[int] = (256,),
        context_dim: int = 256,
        min_scale: float = 1e-4,
        encoder: str = "mlp",
        image_shape: Sequence[int] | None = None,
        channels: Sequence[int] | None = None,
    ) -> None:
        super().__init__(data_dim, latent_dim)
        self.lower_dim, self.top_dim = split_dims(latent_dim, top_dim)
        if isinstance(context_dim, bool) or not isinstance(context_dim, int) or context_dim < 1:
            raise ValueError(f"context_dim must be a positive integer, got {context_dim!r}")
        self.context_dim = context_dim
        self.min_scale = min_scale
        self.net = encoder_body(
            encoder,
            data_dim,
            hidden,
            2 * self.top_dim + context_dim,
            activation,
            image_shape,
            channels,
        )
        self.lower_net = MLP(
            context_dim + self.top_dim, list(top_hidden), 2 * self.lower_dim, activation
        )

    def local_parameters(self, x: torch.Tensor) -> torch.Tensor:
        """The network's output for each point: (mu2, raw sigma2, context h),
        ``[..., B, 2 * top_dim + context_dim]`` (the second network's weights are shared)."""
        return self.net(self.encoder_input(x))

    def _top(self, params: torch.Tensor) -> dist.Distribution:
        return gaussian(params[..., : 2 * self.top_dim], self.min_scale)

    def family(self, params: torch.Tensor) -> dist.Distribution:
        """q from its per-point parameters (:meth:`local_parameters`)."""
        context = params[..., 2 * self.top_dim :]

        def lower(z2: torch.Tensor) -> dist.Distribution:
            shape = torch.broadcast_shapes(z2.shape[:-1], context.shape[:-1])
            h = torch.cat(
                [context.expand(*shape, self.context_dim), z2.expand(*shape, self.top_dim)], -1
            )
            return gaussian(self.lower_net(h), self.min_scale)

        return TopDown(self._top(params), lower, self.lower_dim)

    def top_posterior(self, x: torch.Tensor) -> dist.Distribution:
        """q(z2 | x), the top layer's posterior (a diagonal Gaussian over ``top_dim``)."""
        return self._top(self.local_parameters(x))

    def forward(self, x: torch.Tensor) -> dist.Distribution:
        return self.family(self.local_parameters(x))


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
        vamp = self.vamp
        components = vamp._guide.top_posterior(vamp.pseudo_inputs)
        return mixture_of_posteriors(components, vamp.pseudo_logits.device, vamp.matmul_density)
