"""The deterministic autoencoder the VAE grew out of, with the VAE's own network shapes.

z = f(x) and x_hat = g(z), trained to minimize a reconstruction loss: binary cross-entropy for
binary pixels (the Bernoulli log-likelihood without any z uncertainty or prior), squared error
for continuous ones. No prior, no KL term: nothing shapes the space *between* codes, which is
what the interpolation experiment shows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .nets import MLP
from .training import TrainingData, make_optimizer


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


def train_autoencoder(
    ae: Autoencoder,
    data: TrainingData,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> list[dict[str, float]]:
    """Adam on the reconstruction loss; returns per-epoch train and validation losses."""
    device = torch.device(device)
    ae.to(device)
    optimizer = make_optimizer(ae.parameters(), lr)
    history, start = [], time.perf_counter()
    steps = math.ceil(data.num_train / batch_size)
    bar = tqdm(range(epochs), desc="training autoencoder", unit="epoch", disable=not progress)
    for epoch in bar:
        x_all = data.epoch().to(device)
        perm = torch.randperm(data.num_train, device=device)
        total = 0.0
        for i in range(steps):
            x = x_all[perm[i * batch_size : (i + 1) * batch_size]]
            loss = ae.loss(x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x)
        with torch.no_grad():
            val = ae.loss(data.val.to(device)).item()
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": total / data.num_train,
                "val_loss": val,
                "wall_seconds": time.perf_counter() - start,
            }
        )
        bar.set_postfix(val_loss=f"{val:.2f}", refresh=False)
    ae.eval()
    return history
