"""Figures (matplotlib, headless) and image grids (torchvision)."""

from __future__ import annotations

import math
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


def plot_image_panels(
    panels: Sequence[tuple[str, torch.Tensor]],
    image_shape: Sequence[int],
    path: str | os.PathLike,
    title: str,
    nrow: int = 8,
) -> Path:
    """Image grids side by side, one titled panel each (``[N, D]`` images in [0, 1])."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.6), squeeze=False)
    for ax, (name, images) in zip(axes[0], panels, strict=True):
        ax.imshow(
            image_grid(images, image_shape, nrow=nrow),
            cmap="gray",
            vmin=0,
            vmax=1,
            interpolation="nearest",
        )
        ax.set_title(name, fontsize=10)
        ax.set_axis_off()
    fig.suptitle(title)
    return _save(fig, path)


def density_grid(extent: Sequence[float], resolution: int = 200) -> tuple[torch.Tensor, tuple]:
    """Points of a regular 2-D grid over ``extent = (x0, x1, y0, y1)``: ``[R*R, 2]`` and the
    grid shape (rows are y, columns x, as ``imshow`` with ``origin="lower"`` expects)."""
    x0, x1, y0, y1 = extent
    xs = torch.linspace(x0, x1, resolution)
    ys = torch.linspace(y0, y1, resolution)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy], -1).reshape(-1, 2), (resolution, resolution)


def plot_density_rows(
    rows: Sequence[tuple[str, torch.Tensor, Sequence[tuple[str, torch.Tensor]]]],
    extent: Sequence[float],
    path: str | os.PathLike,
    title: str,
) -> Path:
    """One row per data set: the data, then learned densities p(x) as heat maps.

    ``rows``: (row label, data points ``[N, 2]``, [(panel title, log-density on the grid of
    :func:`density_grid`, ``[R, R]``), ...]).
    """
    ncols = 1 + max(len(panels) for _, _, panels in rows)
    fig, axes = plt.subplots(
        len(rows), ncols, figsize=(2.5 * ncols, 2.5 * len(rows)), squeeze=False
    )
    for r, (label, data, panels) in enumerate(rows):
        ax = axes[r, 0]
        ax.scatter(data[:, 0], data[:, 1], s=1.5, alpha=0.4, color="black")
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_ylabel(label)
        if r == 0:
            ax.set_title("data", fontsize=9)
        for c, (name, log_density) in enumerate(panels, start=1):
            ax = axes[r, c]
            ax.imshow(
                log_density.exp().numpy(),
                origin="lower",
                extent=extent,
                cmap="viridis",
                aspect="auto",
                interpolation="bilinear",
            )
            ax.set_title(name, fontsize=9)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_aspect("equal")
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return _save(fig, path)


def _ellipses(ax, means, covariances, alphas, color, n_std: float = 2.0, fill: bool = True) -> None:
    from matplotlib.patches import Ellipse

    for mean, cov, alpha in zip(means, covariances, alphas, strict=True):
        values, vectors = torch.linalg.eigh(torch.as_tensor(cov, dtype=torch.float64))
        angle = math.degrees(math.atan2(vectors[1, -1], vectors[0, -1]))
        width = 2 * n_std * math.sqrt(max(values[-1].item(), 0))
        height = 2 * n_std * math.sqrt(max(values[0].item(), 0))
        ax.add_patch(
            Ellipse(
                tuple(float(v) for v in mean),
                width,
                height,
                angle=angle,
                facecolor=color,
                edgecolor=color,
                alpha=float(alpha),
                lw=0.8,
            )
        )


def plot_mixture_components(
    data: torch.Tensor,
    panels: Sequence[dict[str, Any]],
    extent: Sequence[float],
    path: str | os.PathLike,
    title: str,
) -> Path:
    """Mixtures drawn as their components' 2-standard-deviation ellipses over the data.

    Each panel: ``{"title", "means" [M, 2], "covariances" [M, 2, 2], "weights" [M],
    "curve" (optional [M, 2], drawn as a line through the means)}``.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        ax.scatter(data[:, 0], data[:, 1], s=1.5, alpha=0.25, color="gray")
        weights = torch.as_tensor(panel["weights"], dtype=torch.float64)
        many = len(weights) > 20  # many components: outlines, or they merge into one blob
        alphas = (0.15 + 0.6 * weights / weights.max()).clamp(max=0.75)
        if many:
            alphas = torch.full_like(weights, 0.5)
        _ellipses(
            ax,
            panel["means"],
            panel["covariances"],
            alphas,
            panel.get("color", "C0"),
            fill=not many,
        )
        if panel.get("curve") is not None:
            curve = panel["curve"]
            ax.plot(curve[:, 0], curve[:, 1], color="C3", lw=1.2, label="mu_theta(z)")
            ax.legend(loc="lower right", fontsize=8)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_aspect("equal")
        ax.set_title(panel["title"], fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return _save(fig, path)
