"""Amortized guides q(z|x) (encoders).

Contract: a guide part is a callable (an :class:`torch.nn.Module` when it has parameters) mapping
a batch ``x`` of shape ``[..., B, D]`` to a Pyro distribution over z with
``batch_shape == x.shape[:-1]``, ``event_shape == (latent_dim,)`` and ``has_rsample`` true, so
that ELBO gradients flow through the reparameterized sample z = g_phi(eps, x).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn

from .nets import MLP

if TYPE_CHECKING:
    from .config import ModelConfig


class DiagonalGaussianGuide(nn.Module):
    """q(z|x) = N(mu(x), diag sigma(x)^2) with sigma = softplus(.) + min_scale > 0.

    Sampling is reparameterized: z = mu + sigma * eps, eps ~ N(0, I).
    """

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        hidden: Sequence[int] = (400,),
        activation: str = "relu",
        min_scale: float = 1e-4,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.min_scale = min_scale
        self.net = MLP(data_dim, hidden, 2 * latent_dim, activation)

    @classmethod
    def from_config(cls, data_dim: int, cfg: ModelConfig) -> DiagonalGaussianGuide:
        return cls(data_dim, cfg.latent_dim, cfg.hidden, cfg.activation)

    def forward(self, x: torch.Tensor) -> dist.Distribution:
        loc, raw_scale = self.net(x).chunk(2, dim=-1)
        return dist.Normal(loc, F.softplus(raw_scale) + self.min_scale).to_event(1)


GUIDES: dict[str, type[nn.Module]] = {"diagonal": DiagonalGaussianGuide}
"""Guides selectable by name (``--guide``); each class has ``from_config(data_dim, cfg)``."""
