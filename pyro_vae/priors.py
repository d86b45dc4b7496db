"""Priors p(z).

Contract: a prior is a callable (usually an :class:`torch.nn.Module`, so that its parameters are
registered with Pyro and saved in checkpoints) taking no arguments and returning a Pyro
distribution with ``batch_shape == ()`` and ``event_shape == (latent_dim,)``. The model samples
it inside the data plate, which broadcasts it over the batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyro.distributions as dist
import torch
from torch import nn

if TYPE_CHECKING:
    from .config import ModelConfig


class StandardNormalPrior(nn.Module):
    """p(z) = N(0, I)."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.register_buffer("loc", torch.zeros(latent_dim), persistent=False)
        self.register_buffer("scale", torch.ones(latent_dim), persistent=False)

    @classmethod
    def from_config(cls, data_dim: int, cfg: ModelConfig) -> StandardNormalPrior:
        return cls(cfg.latent_dim)

    def forward(self) -> dist.Distribution:
        return dist.Normal(self.loc, self.scale).to_event(1)


PRIORS: dict[str, type[nn.Module]] = {"normal": StandardNormalPrior}
"""Priors selectable by name (``--prior``); each class has ``from_config(data_dim, cfg)``."""
