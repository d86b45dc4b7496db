"""Likelihoods p(x|z): turn the decoder's output into a distribution over x.

Contract: a likelihood is a callable (an :class:`torch.nn.Module` when it has parameters) with an
integer attribute ``param_dim`` (how many decoder outputs it needs per data dimension) that maps
decoder outputs of shape ``[..., B, D * param_dim]`` to a Pyro distribution with
``event_shape == (D,)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyro.distributions as dist
import torch
from torch import nn

if TYPE_CHECKING:
    from .config import ModelConfig


class BernoulliLikelihood(nn.Module):
    """p(x|z) = prod_d Bernoulli(x_d; sigmoid(f_theta(z)_d)), for binary x.

    With ``strict=False`` the support check is switched off so that grey levels in [0, 1] can be
    scored by the Bernoulli formula (the recipe of many tutorials; not a density of grey levels).
    """

    param_dim = 1
    data_kind = "binary"

    def __init__(self, strict: bool = True) -> None:
        super().__init__()
        self.strict = strict

    @classmethod
    def from_config(cls, data_dim: int, cfg: ModelConfig, pixels: str) -> BernoulliLikelihood:
        return cls(strict=pixels != "grey")

    def forward(self, logits: torch.Tensor) -> dist.Distribution:
        validate = None if self.strict else False
        return dist.Bernoulli(logits=logits, validate_args=validate).to_event(1)


LIKELIHOODS: dict[str, type[nn.Module]] = {"bernoulli": BernoulliLikelihood}
"""Likelihoods selectable by name (``--likelihood``); each class has
``from_config(data_dim, cfg, pixels)`` and a ``data_kind`` ("binary" or "continuous")."""
