"""Training the deterministic autoencoder (:class:`pyro_vae.model.autoencoder.Autoencoder`)
by Adam on its reconstruction loss, on the same data and schedule as a VAE."""

from __future__ import annotations

import math
import time

import torch
from tqdm.auto import tqdm

from ..model.autoencoder import Autoencoder
from .training import TrainingData, make_optimizer


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
