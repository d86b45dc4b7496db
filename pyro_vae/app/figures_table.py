"""The figures of a run on tabular data (a data file whose examples are not images): training
curves, reconstructions and samples as per-feature plots, and the latent space coloured by the
label column when there is one. Image data sets' figures: :mod:`.figures`."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..data.datasets import ImageDataset
from ..data.pixels import eval_view
from ..infer.objectives import objective_name
from ..model.vae import VAE
from ..rng import seeded_rng
from .config import RunConfig
from .interpolation import FIGURE_SEED
from .latent import embed_2d
from .plots import plot_elbo_curves, plot_latent_scatter
from .plots_table import plot_table_reconstructions, plot_table_samples, standardizer
from .runs import RunDirectory

TSNE_POINTS = 2000
"""At most this many test examples in a t-SNE map (its cost grows with the square)."""
SAMPLES = 1000
"""Draws x ~ p(x) summarized per feature."""

TABLE_FIGURES: tuple[tuple[str, str], ...] = (
    (
        "figures/reconstructions.png",
        "Test examples (dots) and their reconstructions E[x | z] at the posterior mean (lines), "
        "feature by feature, standardized by the training examples' mean and standard deviation: "
        "what the code keeps of an example.",
    ),
    (
        "figures/samples.png",
        f"Each feature's distribution in the test data and in {SAMPLES} samples x ~ p(x) (boxes: "
        "quartiles; whiskers: 1.5 interquartile ranges), and the features' correlations in both: "
        "what the model generates.",
    ),
    (
        "figures/latent_space.png",
        "Where the test examples land in latent space (posterior means; t-SNE when z has more "
        "than two dimensions), coloured by the label column if there is one, which the model "
        "never saw.",
    ),
)
"""The report's sentence under each figure of tabular data."""


def class_names(dataset: ImageDataset) -> list[str]:
    """The names of the label codes to colour the latent space by (unlabelled: one name)."""
    if dataset.classes:
        return list(dataset.classes)
    return ["test examples (no labels)"]


def write_table_figures(
    run: RunDirectory,
    vae: VAE,
    cfg: RunConfig,
    dataset: ImageDataset,
    device: torch.device,
    progress: bool = False,
) -> list[Path]:
    """Into ``RUN/figures/``: ``elbo_curves.png`` (when the run has metrics),
    ``reconstructions.png``, ``samples.png`` and ``latent_space.png``."""
    figures, name = run.figures_dir, dataset.name
    metrics = run.read_metrics()
    x = eval_view(dataset.test, dataset.levels, cfg.data.pixels, "test").to(device)
    train = eval_view(dataset.train, dataset.levels, cfg.data.pixels, "train")
    scale = standardizer(train)
    paths: list[Path] = []
    with tqdm(total=3 + bool(metrics), desc="figures", unit="figure", disable=not progress) as bar:
        if metrics:
            t = cfg.train
            paths.append(
                plot_elbo_curves(
                    metrics,
                    figures / "elbo_curves.png",
                    title=f"{name}: training curves (latent {cfg.model.latent_dim})",
                    objective=objective_name(t.elbo, t.particles, t.beta, t.kl_warmup),
                )
            )
            bar.update()
        with seeded_rng(FIGURE_SEED):
            recon = vae.reconstruct(x[:8])
            samples = vae.sample(SAMPLES, mean=False)
        paths.append(
            plot_table_reconstructions(
                x[:8].cpu(),
                recon.cpu(),
                scale,
                dataset.columns,
                figures / "reconstructions.png",
                title=f"{name}: test examples and E[x | z = mean of q(z|x)]",
            )
        )
        bar.update()
        paths.append(
            plot_table_samples(
                x.cpu(),
                samples.cpu(),
                scale,
                dataset.columns,
                figures / "samples.png",
                title=f"{name}: test data against {SAMPLES} samples x ~ p(x)",
            )
        )
        bar.update()
        n = len(x) if vae.latent_dim <= 2 else min(len(x), TSNE_POINTS)
        points, axis = embed_2d(vae.posterior_means(x[:n]).cpu(), seed=FIGURE_SEED)
        paths.append(
            plot_latent_scatter(
                points,
                dataset.test.labels[:n],
                class_names(dataset),
                figures / "latent_space.png",
                title=f"{name}: posterior means of {n:,} test examples",
                axis_label=axis,
            )
        )
        bar.update()
    return paths
