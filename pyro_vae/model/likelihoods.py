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


MIN_RATE = 1e-6
"""Floor of the count likelihoods' mean: with it log p(x|z) of a positive count stays finite
(x log(1e-6) = -13.8 x nats) however negative the decoder's output."""


def count_mean(out: torch.Tensor, min_rate: float = MIN_RATE) -> torch.Tensor:
    """The mean of a count likelihood, ``softplus(out) + min_rate``. Softplus rather than exp:
    it grows linearly, so one overshooting decoder output during training is a large count, not
    an overflow to an infinite rate (exp(89) is infinite in float32); near zero it is exp."""
    return F.softplus(out) + min_rate


class PoissonLikelihood(Likelihood):
    """p(x|z) = prod_d Poisson(x_d; lambda_d), lambda = softplus(f_theta(z)) + ``min_rate``, for
    count data (``pixels="counts"``): a probability mass, so log p(x) is comparable with any
    other model of the same counts. Its samples are counts (floats holding integers)."""

    param_dim = 1
    observes = "counts"

    def __init__(self, min_rate: float = MIN_RATE) -> None:
        super().__init__()
        if not 0 < min_rate < math.inf:
            raise ValueError(f"min_rate must be a positive number, got {min_rate}")
        self.min_rate = float(min_rate)

    def forward(self, out: torch.Tensor) -> dist.Distribution:
        return dist.Poisson(count_mean(out, self.min_rate)).to_event(1)


MAX_LOG_THETA = 10.0
"""|log theta| of the negative binomial is clamped to 10 (theta in [4.5e-5, 2.2e4]): beyond
e^10 it is a Poisson for any count below thousands (variance mu + mu^2 / theta), and float32's
lgamma(theta + x) - lgamma(theta) loses more than the difference; below e^-10 nearly all mass
sits at 0."""


class NegativeBinomialLikelihood(Likelihood):
    """p(x|z) = prod_d NB(x_d; mean mu_d, inverse dispersion theta_d), the likelihood of
    single-cell VAEs (scVI's, with gene-wise dispersion): mu = softplus(f_theta(z)) +
    ``min_rate`` from the decoder, theta_d = exp(log_theta_d) one learned parameter per feature
    (started at ``theta``), so that Var x_d = mu_d + mu_d^2 / theta_d. In Pyro,
    ``NegativeBinomial(total_count=theta, logits=log mu - log theta)``: its mean
    theta * exp(logits) is mu. ``param_dim`` 1: the decoder gives the means only."""

    param_dim = 1
    observes = "counts"

    def __init__(self, data_dim: int, theta: float = 1.0, min_rate: float = MIN_RATE) -> None:
        super().__init__()
        if not math.exp(-MAX_LOG_THETA) <= theta <= math.exp(MAX_LOG_THETA):
            raise ValueError(f"theta must be between 4.5e-5 and 2.2e4, got {theta}")
        if not 0 < min_rate < math.inf:
            raise ValueError(f"min_rate must be a positive number, got {min_rate}")
        self.log_theta = torch.nn.Parameter(torch.full((int(data_dim),), math.log(theta)))
        self.min_rate = float(min_rate)

    @property
    def theta(self) -> torch.Tensor:
        """The inverse dispersion per feature, ``[D]``."""
        return self.log_theta.clamp(-MAX_LOG_THETA, MAX_LOG_THETA).exp()

    def forward(self, out: torch.Tensor) -> dist.Distribution:
        log_theta = self.log_theta.clamp(-MAX_LOG_THETA, MAX_LOG_THETA)
        logits = count_mean(out, self.min_rate).log() - log_theta
        return dist.NegativeBinomial(total_count=log_theta.exp(), logits=logits).to_event(1)


LIKELIHOODS: dict[str, type[Likelihood]] = {
    "bernoulli": BernoulliLikelihood,
    "gaussian": GaussianLikelihood,
    "gaussian-learned": LearnedGaussianLikelihood,
    "poisson": PoissonLikelihood,
    "negative-binomial": NegativeBinomialLikelihood,
}
"""Built-in likelihoods by short name (``--likelihood``)."""
