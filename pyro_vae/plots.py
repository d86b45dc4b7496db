"""Figures (matplotlib, headless) and image grids (torchvision)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402


def _save(fig: plt.Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def image_grid(images: torch.Tensor, image_shape: Sequence[int], nrow: int) -> np.ndarray:
    """``[N, D]`` images in [0, 1] -> one ``[H', W']`` grid with a 1-pixel white border."""
    h, w = image_shape
    batch = images.detach().float().cpu().clamp(0, 1).reshape(-1, 1, h, w)
    grid = make_grid(batch, nrow=nrow, padding=1, pad_value=1.0)
    return grid[0].numpy()


def plot_elbo_curves(
    metrics: list[dict[str, Any]],
    path: str | os.PathLike,
    title: str = "ELBO during training",
    objective: str = "ELBO",
) -> Path:
    """The training objective and the validation ELBO (nats per example) against epochs."""
    epochs = [m["epoch"] for m in metrics]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(
        epochs,
        [m["train_objective"] for m in metrics],
        label=f"train {objective} (minibatch average)",
    )
    ax.plot(epochs, [m["val_elbo"] for m in metrics], label="validation")
    best = max(metrics, key=lambda m: m["val_elbo"])
    ax.scatter([best["epoch"]], [best["val_elbo"]], color="C1", zorder=3, s=18)
    ax.annotate(
        f"{best['val_elbo']:.2f}",
        (best["epoch"], best["val_elbo"]),
        textcoords="offset points",
        xytext=(-10, 8),
        fontsize=8,
    )
    # The first epochs are far below the rest; keep the informative range in view.
    values = [m[k] for m in metrics for k in ("train_objective", "val_elbo")]
    tail = sorted(values)[len(values) // 20 :] if len(values) >= 20 else values
    lo, hi = min(tail), max(values)
    pad = 0.05 * (hi - lo or 1.0)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per example")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_image_rows(
    rows: Sequence[torch.Tensor],
    row_labels: Sequence[str],
    image_shape: Sequence[int],
    path: str | os.PathLike,
    title: str,
) -> Path:
    """Rows of images (each ``[n, D]``) one above the other, labelled on the left."""
    n = rows[0].shape[0]
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(min(1.0 + 0.6 * n, 14.0), 0.5 + 0.75 * len(rows)), squeeze=False
    )
    for ax, row, label in zip(axes[:, 0], rows, row_labels, strict=True):
        ax.imshow(
            image_grid(row, image_shape, nrow=n),
            cmap="gray",
            vmin=0,
            vmax=1,
            interpolation="nearest",
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title)
    fig.subplots_adjust(hspace=0.05)
    return _save(fig, path)


def plot_image_grid(
    images: torch.Tensor,
    image_shape: Sequence[int],
    path: str | os.PathLike,
    title: str,
    nrow: int = 8,
) -> Path:
    """A square-ish grid of images ``[N, D]`` in [0, 1]."""
    fig, ax = plt.subplots(figsize=(5.0, 5.0 * ((len(images) + nrow - 1) // nrow) / nrow + 0.4))
    ax.imshow(
        image_grid(images, image_shape, nrow=nrow),
        cmap="gray",
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    ax.set_axis_off()
    ax.set_title(title)
    return _save(fig, path)
