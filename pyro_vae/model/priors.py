"""Priors p(z) (contract: :class:`pyro_vae.model.parts.Prior`).

``prior()`` returns a Pyro distribution with ``batch_shape == ()`` and
``event_shape == (latent_dim,)``; the model samples it inside the data plate, which broadcasts
it over the batch. The VampPrior lives in :mod:`.vamp`, the hierarchical priors beside their
top-down guide in :mod:`.hierarchical`; :data:`PRIORS` registers them all.
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
from .hierarchical import (
    HierarchicalPrior,
    HierarchicalVampPrior,
    TopDown,
    gaussian,
    unit_scale_start,
)
from .nets import MLP
from .parts import Prior
from .vamp import (  # the checks re-exported: priors.py names every built-in prior's module
    VampPrior,
    mixture_of_posteriors,
    vamp_flow_problem,  # noqa: F401
    vamp_top_down_problem,  # noqa: F401
)

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
        unit_scale_start(self.conditional, latent_dim)
        unit_scale_start(self.top_encoder, top_dim)

    def top(self) -> dist.Distribution:
        """p(z2) = N(0, I)."""
        return dist.Normal(self.top_loc, 1.0).to_event(1)

    def given_top(self, z2: torch.Tensor) -> dist.Distribution:
        """p(z | z2)."""
        return gaussian(self.conditional(z2))

    def forward(self) -> dist.Distribution:
        raise NotImplementedError(
            "the two-layer prior p(z) = int p(z2) p(z|z2) dz2 has no closed form; the model "
            "samples z2 and then z (sample_site), and draw() samples it"
        )

    def sample_site(self, name: str = "z") -> torch.Tensor:
        z2 = pyro.sample(f"{name}2", self.top())
        return pyro.sample(name, self.given_top(z2))

    def guide_site(self, name: str, z: torch.Tensor, x: torch.Tensor) -> None:
        pyro.sample(f"{name}2", gaussian(self.top_encoder(z)))

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
        return mixture_of_posteriors(gaussian(self.top_encoder(codes)), codes.device)


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
