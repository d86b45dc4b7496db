"""The deterministic autoencoder the VAE grew out of, with the VAE's own network shapes.

z = f(x) and x_hat = g(z), trained to minimize a reconstruction loss: binary cross-entropy for
binary pixels (the Bernoulli log-likelihood without any z uncertainty or prior), squared error
for continuous ones. No prior, no KL term: nothing shapes the space *between* codes, which is
what the interpolation experiment shows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .nets import MLP


class Autoencoder(nn.Module):
    """Encoder ``data_dim -> hidden -> latent_dim``, decoder the mirror image (as the VAE's)."""

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        hidden: Sequence[int] = (400,),
        activation: str = "relu",
        binary: bool = True,
    ) -> None:
        super().__init__()
        self.binary = binary
        self.encoder = MLP(data_dim, hidden, latent_dim, activation)
        self.decoder = MLP(latent_dim, list(reversed(list(hidden))), data_dim, activation)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The reconstruction in data space (probabilities for binary data)."""
        out = self.decoder(z)
        return torch.sigmoid(out) if self.binary else out

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of the summed per-pixel reconstruction loss."""
        out = self.decoder(self.encoder(x))
        if self.binary:
            per_pixel = F.binary_cross_entropy_with_logits(out, x, reduction="none")
        else:
            per_pixel = (out - x) ** 2
        return per_pixel.sum(-1).mean()
