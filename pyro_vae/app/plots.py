"""Figures (matplotlib, headless) and image grids (torchvision)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from .checkpoint import atomic_write_file  # noqa: E402


def _save(fig: plt.Figure, path: str | os.PathLike) -> Path:
    """Save ``fig`` atomically (a fresh temporary file, never a fixed name or a link, then
    ``os.replace``), in the format its suffix names (PNG when it has none)."""
    path = Path(path)
    fmt = path.suffix[1:].lower() or None
    try:
        atomic_write_file(path, lambda f: fig.savefig(f, format=fmt, dpi=120, bbox_inches="tight"))
    finally:
        plt.close(fig)
    return path


GAP_COLOUR = (0.35, 0.55, 0.85)
"""The colour of the 1-pixel gaps between images in a grid: a blue that no grey pixel has, so
that a white pixel at an image's edge is told from the gap."""


def image_grid(images: torch.Tensor, image_shape: Sequence[int], nrow: int) -> np.ndarray:
    """``[N, D]`` images in [0, 1] of shape ``[H, W]`` (grey) or ``[C, H, W]`` (C = 3: colour;
    an alpha channel, C = 2 or 4, is left out) -> one ``[H', W', 3]`` RGB grid, the images
    separated and framed by 1-pixel gaps of :data:`GAP_COLOUR`; the unused places of a last,
    shorter row are white."""
    c, h, w = (1, *image_shape) if len(image_shape) == 2 else image_shape
    batch = images.detach().float().cpu().clamp(0, 1).reshape(-1, c, h, w)
    batch = batch[:, :3] if c >= 3 else batch[:, :1]
    grid = make_grid(batch, nrow=nrow, padding=1, pad_value=-1.0)  # -1: no pixel's value
    rgb = grid.permute(1, 2, 0).clone()  # make_grid repeats a grey channel three times
    rgb[grid[0] < 0] = torch.tensor(GAP_COLOUR)
    columns = min(nrow, len(batch))
    for k in range(len(batch), rgb.shape[1] // (w + 1) * (rgb.shape[0] // (h + 1))):
        top, left = 1 + (k // columns) * (h + 1), 1 + (k % columns) * (w + 1)
        rgb[top : top + h + 1, left : left + w + 1] = 1.0  # with its right and lower gap
    return rgb.numpy()


def grid_centres(count: int, size: int) -> list[float]:
    """Pixel coordinates of the centres of ``count`` images of ``size`` pixels along one axis
    of an :func:`image_grid` (1-pixel gaps before, between and after them)."""
    return [1 + i * (size + 1) + (size - 1) / 2 for i in range(count)]


def _show_images(ax, images: torch.Tensor, image_shape: Sequence[int], nrow: int) -> None:
    """Draw ``[N, D]`` images in [0, 1] on ``ax`` as one grey-scale grid, ``nrow`` per row."""
    ax.imshow(image_grid(images, image_shape, nrow=nrow), interpolation="nearest")


class EpochPoint(Protocol):
    """An epoch's numbers (a :class:`~pyro_vae.store.metrics.MetricsRecord`, or the
    trainer's :class:`~pyro_vae.infer.training.EpochRecord`)."""

    epoch: int
    train_objective: float
    val_elbo: float


def plot_elbo_curves(
    metrics: Sequence[EpochPoint],
    path: str | os.PathLike,
    title: str = "ELBO during training",
    objective: str = "ELBO",
) -> Path:
    """The training objective and the validation ELBO (nats per example) against epochs."""
    epochs = [m.epoch for m in metrics]
    marker = "o" if len(epochs) <= 30 else None  # a short run (one epoch: one point) shows
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(
        epochs,
        [m.train_objective for m in metrics],
        marker=marker,
        ms=4,
        label=f"train {objective} (minibatch average)",
    )
    ax.plot(epochs, [m.val_elbo for m in metrics], marker=marker, ms=4, label="validation")
    best = max(metrics, key=lambda m: m.val_elbo)
    ax.scatter([best.epoch], [best.val_elbo], color="C1", zorder=3, s=18)
    ax.annotate(  # on a white box: a curve passing behind never hides the minus sign
        f"best {best.val_elbo:.2f} (epoch {best.epoch})",
        (best.epoch, best.val_elbo),
        textcoords="offset points",
        xytext=(-10, 8),
        fontsize=8,
        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
    )
    # The first epochs are far below the rest; keep the informative range in view, and say so.
    values = [v for m in metrics for v in (m.train_objective, m.val_elbo)]
    tail = sorted(values)[len(values) // 20 :] if len(values) >= 20 else values
    lo, hi = min(tail), max(values)
    pad = 0.05 * (hi - lo or 1.0)
    ax.set_ylim(lo - pad, hi + pad)
    below = [m for m in metrics if min(m.train_objective, m.val_elbo) < lo - pad]
    if below:
        lowest = min(min(m.train_objective, m.val_elbo) for m in below)
        ax.text(
            0.99,
            0.02,
            f"{len(below)} early epoch{'s' if len(below) > 1 else ''} below the axis "
            f"(down to {lowest:.1f})",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            color="0.35",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per example")
    ax.set_title(title)
    if len(epochs) == 1:
        ax.set_xticks(epochs)
    ax.grid(alpha=0.3)
    # below the axes, clear of the curves and of the tick labels
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
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
        _show_images(ax, row, image_shape, nrow=n)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title)
    height = fig.get_size_inches()[1]
    fig.subplots_adjust(hspace=0.05, top=1 - 0.55 / height, bottom=0.2 / height)
    return _save(fig, path)


def plot_image_grid(
    images: torch.Tensor,
    image_shape: Sequence[int],
    path: str | os.PathLike,
    title: str,
    nrow: int = 8,
    z_axes: ZAxes | None = None,
) -> Path:
    """A square-ish grid of images ``[N, D]`` in [0, 1]. ``z_axes``: (name of the value that
    varies down the rows, its value in each row, name and values along the columns), for a
    grid of decoded latent points; the axes are then labelled with those values."""
    rows = (len(images) + nrow - 1) // nrow
    fig, ax = plt.subplots(figsize=(5.0, 5.0 * rows / nrow + 0.4))
    _show_images(ax, images, image_shape, nrow)
    _label_z_axes(ax, z_axes, image_shape)
    ax.set_title(title)
    return _save(fig, path)


ZAxes = tuple[str, Sequence[float], str, Sequence[float]]
"""(name of the latent coordinate that varies down the rows, its value in each row, name and
values along the columns) of a grid of decoded latent points."""


def _label_z_axes(ax, z_axes: ZAxes | None, image_shape: Sequence[int]) -> None:
    """Label a grid's rows and columns with their z values, or hide the axes (``None``)."""
    if z_axes is None:
        ax.set_axis_off()
        return
    row_name, row_values, col_name, col_values = z_axes
    h, w = image_shape[-2:]
    ax.set_yticks(grid_centres(len(row_values), h), [f"{v:.2f}" for v in row_values])
    ax.set_xticks(grid_centres(len(col_values), w), [f"{v:.2f}" for v in col_values], rotation=90)
    ax.tick_params(labelsize=7, length=2)
    ax.set_ylabel(row_name)
    ax.set_xlabel(col_name)


def plot_image_panels(
    panels: Sequence[tuple[str, torch.Tensor]],
    image_shape: Sequence[int],
    path: str | os.PathLike,
    title: str,
    nrow: int = 8,
    z_axes: Sequence[ZAxes | None] | None = None,
    ncols: int | None = None,
) -> Path:
    """Image grids, one titled panel each (``[N, D]`` images in [0, 1]), ``ncols`` to a row
    (default: all side by side); ``z_axes``: per panel, the z values of a grid of decoded
    latent points, or ``None``."""
    ncols = ncols or len(panels)
    nrows = math.ceil(len(panels) / ncols)
    width = 4.2 if nrows == 1 else 5.4
    fig, grid = plt.subplots(nrows, ncols, figsize=(width * ncols, 4.6 * nrows), squeeze=False)
    axes = list(grid.flat)
    for ax in axes[len(panels) :]:
        ax.axis("off")
    z_axes = z_axes or [None] * len(panels)
    for ax, (name, images), panel_z in zip(axes, panels, z_axes, strict=False):
        _show_images(ax, images, image_shape, nrow)
        ax.set_title(name, fontsize=10)
        _label_z_axes(ax, panel_z, image_shape)
    if any(z is not None for z in z_axes):
        fig.subplots_adjust(wspace=0.4)  # room for a labelled panel's tick labels
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
                facecolor=color if fill else "none",
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


def plot_latent_scatter(
    points: torch.Tensor,
    labels: torch.Tensor,
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str,
    axis_label: str = "z",
) -> Path:
    """2-D points coloured by class, with a legend."""
    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    cmap = plt.get_cmap("tab10")
    for c in range(len(class_names)):
        mask = labels == c
        if mask.any():
            ax.scatter(
                points[mask, 0],
                points[mask, 1],
                s=6,
                alpha=0.7,
                color=cmap(c % 10),
                label=class_names[c],
            )
    ax.set_xlabel(f"{axis_label}, coordinate 1")
    ax.set_ylabel(f"{axis_label}, coordinate 2")
    ax.set_title(title)
    ax.legend(markerscale=2.5, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(fig, path)


def plot_interpolations(
    paths: Sequence[tuple[str, torch.Tensor, torch.Tensor]],
    image_shape: Sequence[int],
    path: str | os.PathLike,
    title: str,
    shown: int = 3,
) -> Path:
    """Straight-line interpolations and their scores.

    ``paths``: (name, decoded frames ``[P, S, D]``, log p of each frame ``[P, S]``) per model.
    Left: the first ``shown`` pairs, one row per model; right: the mean score along the path
    with its standard error over the P pairs.
    """
    rows = [(f"{name}, pair {i + 1}", frames[i]) for i in range(shown) for name, frames, _ in paths]
    steps = paths[0][1].shape[1]
    fig = plt.figure(figsize=(13.0, 0.9 * len(rows) + 1.2))
    grid = fig.add_gridspec(len(rows), 2, width_ratios=[2.2, 1.0], wspace=0.25)
    for r, (label, frames) in enumerate(rows):
        ax = fig.add_subplot(grid[r, 0])
        _show_images(ax, frames, image_shape, nrow=steps)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    ax = fig.add_subplot(grid[:, 1])
    t = torch.linspace(0, 1, steps)
    for k, (name, _, scores) in enumerate(paths):
        mean = scores.double().mean(0)
        se = scores.double().std(0) / math.sqrt(len(scores))
        ax.plot(t, mean, marker="o", ms=3, color=f"C{k}", label=name)
        ax.fill_between(t, mean - 2 * se, mean + 2 * se, color=f"C{k}", alpha=0.2)
    ax.set_xlabel("position t along the path")
    ax.set_ylabel("log p(frame) under the judge (nats)")
    ax.set_title(f"mean over {len(paths[0][2])} pairs (band: 2 s.e.)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def plot_curves(
    curves: Sequence[dict[str, Any]],
    path: str | os.PathLike,
    title: str,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
) -> Path:
    """Several runs' curves: each ``{"label", "x", "train", "test"}``; train solid, test
    dashed, one colour per run."""
    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    for k, curve in enumerate(curves):
        ax.plot(curve["x"], curve["train"], color=f"C{k}", lw=1.4, label=f"{curve['label']}")
        if curve.get("test") is not None:
            ax.plot(curve["x"], curve["test"], color=f"C{k}", lw=1.4, ls="--")
    if logx:
        ax.set_xscale("log")
    values = [v for c in curves for k in ("train", "test") if c.get(k) is not None for v in c[k]]
    ordered = sorted(values)
    lo = ordered[len(ordered) // 20] if len(ordered) >= 20 else ordered[0]
    hi = ordered[-1]
    ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    from matplotlib.lines import Line2D

    handles += [Line2D([], [], color="gray", lw=1.4), Line2D([], [], color="gray", lw=1.4, ls="--")]
    labels += ["train", "test"]
    ax.legend(handles, labels, fontsize=8, loc="lower right", ncol=2)
    return _save(fig, path)
