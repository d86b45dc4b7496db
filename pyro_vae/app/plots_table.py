"""Figures of tabular data (a data file whose examples are rows of features, not images):
reconstructions and samples as per-feature plots instead of image grids.

Features of different units are drawn on one axis standardized by the training examples' mean
and standard deviation (said on the axis), so that a feature counted in thousands does not
flatten the others."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from .plots import _save

MAX_FEATURES = 40
"""At most this many features are drawn (the first ones), with the total said in the title."""


def standardizer(train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-feature mean and standard deviation of ``train`` ``[N, F]`` (1 where a feature
    is constant), to draw ``(x - mean) / sd``."""
    train = train.detach().double().cpu()
    sd = train.std(0) if len(train) > 1 else torch.ones(train.shape[1], dtype=torch.float64)
    return train.mean(0), torch.where(sd > 0, sd, torch.ones_like(sd))


def _names(columns: Sequence[str] | None, count: int) -> list[str]:
    if columns is not None and len(columns) >= count:
        return [str(c)[:14] for c in columns[:count]]
    return [str(i) for i in range(count)]


def _feature_axis(ax, names: list[str]) -> None:
    ax.set_xticks(range(len(names)), names, rotation=90 if len(names) > 8 else 0, fontsize=7)
    ax.axhline(0.0, color="0.8", lw=0.6, zorder=0)
    ax.grid(axis="y", alpha=0.3)


def plot_table_reconstructions(
    x: torch.Tensor,
    recon: torch.Tensor,
    scale: tuple[torch.Tensor, torch.Tensor],
    columns: Sequence[str] | None,
    path: str | os.PathLike,
    title: str,
    per_row: int | None = None,
) -> Path:
    """Test examples (dots) and their reconstructions E[x | z] (lines), one panel each, feature
    by feature, standardized by ``scale`` (:func:`standardizer`)."""
    mean, sd = scale
    count = min(x.shape[1], MAX_FEATURES)
    xs = ((x.double().cpu() - mean) / sd)[:, :count].numpy()
    rs = ((recon.double().cpu() - mean) / sd)[:, :count].numpy()
    names = _names(columns, count)
    per_row = per_row or (4 if count <= 12 else 2)  # many features: wider panels
    rows = (len(xs) + per_row - 1) // per_row
    width = max(3.0, 0.22 * count + 1.2)
    fig, axes = plt.subplots(
        rows, per_row, figsize=(width * per_row, 2.6 * rows + 0.6), squeeze=False, sharey=True
    )
    for k, ax in enumerate(axes.flat):
        if k >= len(xs):
            ax.set_axis_off()
            continue
        ax.plot(range(count), rs[k], color="C0", lw=1.2, marker=".", label="E[x | z]")
        ax.scatter(range(count), xs[k], color="black", s=12, zorder=3, label="test example")
        ax.set_title(f"test example {k + 1}", fontsize=8)
        _feature_axis(ax, names)
    for ax in axes[:, 0]:
        ax.set_ylabel("standardized value", fontsize=8)
    axes.flat[0].legend(fontsize=7, loc="best")
    more = f" (first {count} of {x.shape[1]} features)" if count < x.shape[1] else ""
    fig.suptitle(title + more + "\nvalues standardized by the training mean and s.d.")
    fig.tight_layout()
    return _save(fig, path)


def plot_table_samples(
    data: torch.Tensor,
    samples: torch.Tensor,
    scale: tuple[torch.Tensor, torch.Tensor],
    columns: Sequence[str] | None,
    path: str | os.PathLike,
    title: str,
) -> Path:
    """Each feature's distribution in the test data and in samples x ~ p(x) (box plots side by
    side), and, for two or more features, their correlation matrices."""
    mean, sd = scale
    count = min(data.shape[1], MAX_FEATURES)
    ds = ((data.double().cpu() - mean) / sd)[:, :count].numpy()
    ss = ((samples.double().cpu() - mean) / sd)[:, :count].numpy()
    names = _names(columns, count)
    corr = count > 1
    width = max(6.4, 0.35 * count + 1.5)
    fig = plt.figure(figsize=(width, 7.6 if corr else 3.8))
    grid = fig.add_gridspec(
        2 if corr else 1,
        3,
        height_ratios=[1.0, 1.15] if corr else [1.0],
        width_ratios=[1.0, 1.0, 0.05],
        wspace=0.08,
    )
    ax = fig.add_subplot(grid[0, :])
    where = np.arange(count)
    style = {"widths": 0.32, "showfliers": False, "patch_artist": True}
    a = ax.boxplot(ds, positions=where - 0.18, **style)
    b = ax.boxplot(ss, positions=where + 0.18, **style)
    for box in a["boxes"]:
        box.set(facecolor="0.75", edgecolor="0.3")
    for box in b["boxes"]:
        box.set(facecolor="C0", edgecolor="C0", alpha=0.6)
    _feature_axis(ax, names)
    ax.set_xlim(-0.6, count - 0.4)
    ax.set_ylabel("standardized value")
    ax.legend([a["boxes"][0], b["boxes"][0]], ["test data", "x ~ p(x)"], fontsize=8, loc="best")
    if corr:
        for col, (label, values) in enumerate((("test data", ds), ("x ~ p(x)", ss))):
            cax = fig.add_subplot(grid[1, col])
            image = cax.imshow(_correlations(values), vmin=-1, vmax=1, cmap="RdBu_r")
            cax.set_title(f"correlations: {label}", fontsize=9)
            cax.set_xticks(range(count), names, rotation=90, fontsize=6)
            cax.set_yticks(range(count), names if col == 0 else [], fontsize=6)
        fig.colorbar(image, cax=fig.add_subplot(grid[1, 2]))
    more = f" (first {count} of {data.shape[1]} features)" if count < data.shape[1] else ""
    fig.suptitle(title + more)
    fig.subplots_adjust(top=0.93, hspace=0.45)
    return _save(fig, path)


def _correlations(values: np.ndarray) -> np.ndarray:
    """The correlation matrix of the columns of ``values`` (0 where a column is constant)."""
    centred = values - values.mean(0)
    norms = np.sqrt((centred**2).sum(0))
    norms[norms == 0] = np.inf
    return (centred.T @ centred) / np.outer(norms, norms)
