"""Mixtures of Bernoullis (for binary images), as Pyro models with an exact log p(x)."""

from __future__ import annotations

from typing import Any

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints

from ...errors import ConfigError
from .base import Mixture


class BernoulliMixture(Mixture):
    """p(x) = sum_k pi_k prod_d Bernoulli(x_d; p_kd), for binary data; the probabilities are
    kept in [eps, 1 - eps] so that no pixel has probability zero."""

    def __init__(
        self,
        n_components: int,
        eps: float = 1e-4,
        seed: int = 0,
        init: str = "kmeans",
        n_init: int = 1,
    ) -> None:
        super().__init__(n_components, seed, init, n_init)
        if not 0 < eps < 0.5:
            raise ConfigError(f"eps must lie in (0, 0.5), got {eps}")
        self.eps = float(eps)

    _STATE = ("probs",)

    def _options(self) -> dict[str, Any]:
        return {"eps": self.eps, **super()._options()}

    def _init_params(self, x: torch.Tensor, centers: torch.Tensor) -> None:
        k = self.n_components
        self.weights = torch.full((k,), 1.0 / k, dtype=x.dtype)
        self.probs = (0.5 * centers + 0.5 * x.mean(0)).clamp(self.eps, 1 - self.eps)

    def component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.probs.log().T + (1 - x) @ torch.log1p(-self.probs).T

    def _m_step(self, x: torch.Tensor, resp: torch.Tensor) -> None:
        nk = resp.sum(0) + 1e-12
        self.weights = nk / nk.sum()
        self.probs = ((resp.T @ x) / nk.unsqueeze(-1)).clamp(self.eps, 1 - self.eps)

    def _pyro_params(self) -> dict[str, torch.Tensor]:
        return {
            "weights": pyro.param("weights", self.weights, constraint=constraints.simplex),
            "probs": pyro.param(
                "probs", self.probs, constraint=constraints.interval(self.eps, 1 - self.eps)
            ),
        }

    def _read_pyro_params(self, params: dict[str, torch.Tensor]) -> None:
        self.weights, self.probs = params["weights"], params["probs"]

    def _component(self, params: dict[str, torch.Tensor], k: torch.Tensor) -> dist.Distribution:
        return dist.Bernoulli(probs=params["probs"][k]).to_event(1)

    def component_means(self) -> torch.Tensor:
        return self.probs

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        self._check_fitted()
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        return torch.bernoulli(self.probs[k], generator=generator)

    @property
    def num_parameters(self) -> int:
        k, d = self.probs.shape
        return (k - 1) + k * d
