"""Gaussian mixtures, diagonal or full covariance, as Pyro models with an exact log p(x)."""

from __future__ import annotations

import math
from typing import Any

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints

from ...errors import ConfigError
from .base import COVARIANCES, Mixture


class GaussianMixture(Mixture):
    """p(x) = sum_k pi_k N(x; mu_k, Sigma_k), Sigma_k diagonal (``covariance="diag"``) or full
    (``"full"``, for low dimensions). Every variance (every eigenvalue of Sigma_k) is kept at
    least ``min_variance``, a constraint the M-step respects exactly."""

    def __init__(
        self,
        n_components: int,
        covariance: str = "diag",
        min_variance: float = 1e-6,
        seed: int = 0,
        init: str = "kmeans",
        n_init: int = 1,
    ) -> None:
        super().__init__(n_components, seed, init, n_init)
        if covariance not in COVARIANCES:
            raise ConfigError(f"covariance must be one of {COVARIANCES}, got {covariance!r}")
        if not min_variance > 0:
            raise ConfigError(f"min_variance must be positive, got {min_variance}")
        self.covariance = covariance
        self.min_variance = float(min_variance)
        self._STATE = ("means", "variances") if covariance == "diag" else ("means", "scale_tril")

    def _options(self) -> dict[str, Any]:
        return {
            "covariance": self.covariance,
            "min_variance": self.min_variance,
            **super()._options(),
        }

    # parameters: weights [K], means [K, D], variances [K, D] or scale_tril [K, D, D]
    def _init_params(self, x: torch.Tensor, centers: torch.Tensor) -> None:
        k, d = self.n_components, x.shape[1]
        self.weights = torch.full((k,), 1.0 / k, dtype=x.dtype)
        self.means = centers.clone()
        variance = x.var(0, unbiased=False) + self.min_variance
        if self.covariance == "diag":
            self.variances = variance.expand(k, d).clone()
        else:
            self.scale_tril = torch.diag_embed(variance.sqrt()).expand(k, d, d).clone()

    def component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        if self.covariance == "diag":
            # -0.5 sum_d [(x - mu)^2 / var + log(2 pi var)], expanded into matrix products
            precision = 1.0 / self.variances  # [K, D]
            quad = (
                (x * x) @ precision.T
                - 2 * x @ (self.means * precision).T
                + (self.means**2 * precision).sum(-1)
            )
            log_det = torch.log(2 * math.pi * self.variances).sum(-1)
            return -0.5 * (quad + log_det)
        mvn = dist.MultivariateNormal(self.means, scale_tril=self.scale_tril)
        return mvn.log_prob(x.unsqueeze(-2))

    def _m_step(self, x: torch.Tensor, resp: torch.Tensor) -> None:
        nk = resp.sum(0) + 1e-12  # [K]
        self.weights = nk / nk.sum()
        self.means = (resp.T @ x) / nk.unsqueeze(-1)
        # The floor enters as a constraint, not an addition: the likelihood is unimodal in each
        # variance (in each eigenvalue of Sigma_k), so clamping the unconstrained maximizer at
        # the floor is the exact constrained M-step, and EM stays monotone.
        if self.covariance == "diag":
            second = (resp.T @ (x * x)) / nk.unsqueeze(-1)
            self.variances = (second - self.means**2).clamp(min=self.min_variance)
        else:
            covs = []
            for k in range(self.n_components):
                centred = x - self.means[k]
                covs.append((resp[:, k : k + 1] * centred).T @ centred / nk[k])
            values, vectors = torch.linalg.eigh(torch.stack(covs))
            values = values.clamp(min=self.min_variance)
            covs = vectors @ torch.diag_embed(values) @ vectors.transpose(-1, -2)
            self.scale_tril = torch.linalg.cholesky(covs)

    def _pyro_params(self) -> dict[str, torch.Tensor]:
        floor = math.sqrt(self.min_variance)
        params = {
            "weights": pyro.param("weights", self.weights, constraint=constraints.simplex),
            "means": pyro.param("means", self.means),
        }
        if self.covariance == "diag":
            params["scales"] = pyro.param(
                "scales", self.variances.sqrt(), constraint=constraints.greater_than(floor)
            )
        else:
            params["scale_tril"] = pyro.param(
                "scale_tril", self.scale_tril, constraint=constraints.lower_cholesky
            )
        return params

    def _read_pyro_params(self, params: dict[str, torch.Tensor]) -> None:
        self.weights, self.means = params["weights"], params["means"]
        if self.covariance == "diag":
            self.variances = params["scales"] ** 2
        else:
            self.scale_tril = params["scale_tril"]

    def _component(self, params: dict[str, torch.Tensor], k: torch.Tensor) -> dist.Distribution:
        if self.covariance == "diag":
            return dist.Normal(params["means"][k], params["scales"][k]).to_event(1)
        return dist.MultivariateNormal(params["means"][k], scale_tril=params["scale_tril"][k])

    def covariances(self) -> torch.Tensor:
        """Sigma_k: ``[K, D, D]``."""
        if self.covariance == "diag":
            return torch.diag_embed(self.variances)
        return self.scale_tril @ self.scale_tril.transpose(-1, -2)

    def component_means(self) -> torch.Tensor:
        return self.means

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        self._check_fitted()
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.means.shape[1], generator=generator, dtype=self.means.dtype)
        if self.covariance == "diag":
            return self.means[k] + self.variances[k].sqrt() * eps
        return self.means[k] + (self.scale_tril[k] @ eps.unsqueeze(-1)).squeeze(-1)

    @property
    def num_parameters(self) -> int:
        k, d = self.means.shape
        per_cov = d if self.covariance == "diag" else d * (d + 1) // 2
        return (k - 1) + k * d + k * per_cov
