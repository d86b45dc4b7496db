"""Likelihoods p(x|z): turn the decoder's output into a distribution over x (contract:
:class:`pyro_vae.model.parts.Likelihood`).

A likelihood needs ``param_dim`` decoder outputs per data dimension and maps decoder outputs of
shape ``[..., B, D * param_dim]`` to a Pyro distribution with ``event_shape == (D,)``.
"""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch
import torch.nn.functional as F

from ..config.pixels import SCHEMES
from .parts import Likelihood


class BernoulliLikelihood(Likelihood):
    """p(x|z) = prod_d Bernoulli(x_d; sigmoid(f_theta(z)_d)), for binary x.

    Built for ``pixels="grey"`` (or with ``strict=False``) it observes ``"unit"``: the support
    check is switched off so that grey levels g in [0, 1] are scored by the Bernoulli formula,
    which is then E_{x ~ Bernoulli(g)}[log p(x|z)], the expected log-likelihood of the image's
    binarizations (not a density of grey levels). That is its default training signal
    (``preferred_pixels``); log p(x) is always evaluated on a static binarization.
    """

    param_dim = 1
    observes = "binary"
    preferred_pixels = "grey"

    def __init__(self, pixels: str | None = None, strict: bool | None = None) -> None:
        super().__init__()
        grey_levels = pixels in SCHEMES and SCHEMES[pixels].values == "unit"
        self.strict = not grey_levels if strict is None else bool(strict)
        self.observes = "binary" if self.strict else "unit"

    def forward(self, logits: torch.Tensor) -> dist.Distribution:
        validate = None if self.strict else False
        return dist.Bernoulli(logits=logits, validate_args=validate).to_event(1)


LINKS = {"sigmoid": torch.sigmoid, "identity": lambda t: t}
"""Mean links of the Gaussian likelihoods: ``sigmoid`` keeps pixel means in (0, 1);
``identity`` for unbounded data (the 2-D toy sets, a data file's values: ``pixels="as-is"``)."""


def default_link(pixels: str | None) -> str:
    """``identity`` for values observed as they are (``as-is``), else ``sigmoid``."""
    return "identity" if pixels == "as-is" else "sigmoid"


class GaussianLikelihood(Likelihood):
    """p(x|z) = N(x; mu_theta(z), sigma^2 I) with a fixed sigma and mu = link(f_theta(z)).

    The "mean squared error" decoder: log p(x|z) = -||x - mu||^2 / (2 sigma^2) - D log(sigma
    sqrt(2 pi)). With sigma stated, it is a true density, so log p(x) is comparable across models
    on dequantized data.
    """

    param_dim = 1
    observes = "continuous"

    def __init__(
        self, sigma: float = 0.1, link: str | None = None, pixels: str | None = None
    ) -> None:
        super().__init__()
        link = link or default_link(pixels)
        tiny = torch.finfo(torch.float32).tiny  # below it sigma is zero in float32
        if not tiny <= sigma < math.inf:
            raise ValueError(f"sigma must be a finite number >= {tiny:.3g}, got {sigma}")
        if link not in LINKS:
            raise ValueError(f"link must be one of {list(LINKS)}, got {link!r}")
        self.sigma = float(sigma)
        self.link = link

    def forward(self, out: torch.Tensor) -> dist.Distribution:
        return dist.Normal(LINKS[self.link](out), self.sigma).to_event(1)


class LearnedGaussianLikelihood(Likelihood):
    """p(x|z) = N(x; mu_theta(z), diag sigma_theta(z)^2): the decoder gives a mean
    mu = link(.) and a scale sigma = min_sigma + softplus(.) per pixel (the VAE as a continuous
    mixture of Gaussians N(mu(z), Sigma(z))). ``min_sigma`` keeps sigma away from zero, so the
    density cannot grow without bound on constant pixels.
    """

    param_dim = 2
    observes = "continuous"

    def __init__(
        self, min_sigma: float = 1e-3, link: str | None = None, pixels: str | None = None
    ) -> None:
        super().__init__()
        link = link or default_link(pixels)
        if not min_sigma > 0:
            raise ValueError(f"min_sigma must be positive, got {min_sigma}")
        if link not in LINKS:
            raise ValueError(f"link must be one of {list(LINKS)}, got {link!r}")
        self.min_sigma = float(min_sigma)
        self.link = link

    def forward(self, out: torch.Tensor) -> dist.Distribution:
        mean, raw_scale = out.chunk(2, dim=-1)
        scale = self.min_sigma + F.softplus(raw_scale)
        return dist.Normal(LINKS[self.link](mean), scale).to_event(1)


LIKELIHOODS: dict[str, type[Likelihood]] = {
    "bernoulli": BernoulliLikelihood,
    "gaussian": GaussianLikelihood,
    "gaussian-learned": LearnedGaussianLikelihood,
}
"""Built-in likelihoods by short name (``--likelihood``)."""
