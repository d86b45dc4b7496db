"""The figures of a run, drawn from its directory alone: training curves, reconstructions,
samples, the learned manifold, the latent space, the finite mixture against the VAE and the
interpolations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..data.datasets import CLASS_NAMES, ImageDataset
from ..data.pixels import eval_view, pixel_scheme, unit_interval
from ..infer.objectives import objective_name
from ..model.mixtures import Mixture
from ..model.priors import StandardNormalPrior
from ..model.vae import VAE
from ..rng import seeded_rng
from .baseline import best_mixture
from .config import RunConfig
from .figures_table import write_table_figures
from .interpolation import FIGURE_SEED, interpolation_study, load_run_autoencoder
from .latent import embed_2d
from .plots import (
    ZAxes,
    plot_elbo_curves,
    plot_image_grid,
    plot_image_panels,
    plot_image_rows,
    plot_interpolations,
    plot_latent_scatter,
)
from .run_data import load_run_data
from .runs import RunDirectory, load_vae

TSNE_POINTS = 2000
"""At most this many test images in a t-SNE map (its cost grows with the square)."""


def write_figures(
    run: RunDirectory,
    vae: VAE,
    cfg: RunConfig,
    dataset: ImageDataset,
    device: torch.device,
    progress: bool = False,
) -> list[Path]:
    """ELBO curves, test reconstructions and prior samples, from the run directory's model,
    into ``RUN/figures/`` (a real directory: a symbolic link there is refused, never written
    through), with a progress bar that names the figure being drawn. Holds the run's lock."""
    with run.writing():
        if not dataset.is_image:
            return write_table_figures(run, vae, cfg, dataset, device, progress)
        return _write_figures(run, vae, cfg, dataset, device, progress)


def _write_figures(
    run: RunDirectory,
    vae: VAE,
    cfg: RunConfig,
    dataset: ImageDataset,
    device: torch.device,
    progress: bool,
) -> list[Path]:
    figures = run.figures_dir
    shape = dataset.image_shape
    metrics = run.read_metrics()
    mixture = best_mixture(run, dataset.data_dim)
    ae = load_run_autoencoder(run, cfg, dataset, device)
    total = 4 + bool(metrics) + (mixture is not None) + (ae is not None)
    paths: list[Path] = []
    with tqdm(total=total, desc="figures", unit="figure", disable=not progress) as bar:

        def drawing(what: str) -> None:
            if paths:
                bar.update()
            bar.set_description_str(f"figures: {what}")

        if metrics:
            drawing("elbo_curves.png")
            paths.append(
                plot_elbo_curves(
                    metrics,
                    figures / "elbo_curves.png",
                    title=f"{dataset.name}: training curves (latent {cfg.model.latent_dim})",
                    objective=objective_name(
                        cfg.train.elbo, cfg.train.particles, cfg.train.beta, cfg.train.kl_warmup
                    ),
                )
            )
        drawing("reconstructions.png")
        n = 16
        x = eval_view(dataset.test, dataset.levels, cfg.data.pixels, "test")[:n].to(device)
        with seeded_rng(FIGURE_SEED):
            recon = vae.reconstruct(x)
            samples = vae.sample(64)
        rows, labels = [x, recon], ["model\ninput", "recon-\nstruction"]
        if pixel_scheme(cfg.data.pixels).binary:
            rows.insert(0, unit_interval(dataset.test, dataset.levels)[:n])
            labels.insert(0, "grey\noriginal")
        paths.append(
            plot_image_rows(
                rows,
                labels,
                shape,
                figures / "reconstructions.png",
                title=f"{dataset.name}: test images (above) and E[x | z = mean of q(z|x)] (below)",
            )
        )
        drawing("samples.png")
        paths.append(
            plot_image_grid(
                samples,
                shape,
                figures / "samples.png",
                title=f"{dataset.name}: E[x | z] for z ~ p(z)",
            )
        )
        if mixture is not None:
            drawing("gmm_vs_vae.png")
            paths.append(_mixture_figure(run, mixture, vae, cfg, dataset, device))
        drawing("manifold.png")
        paths += _latent_figures(run, vae, cfg, dataset, device, drawing)
        if ae is not None:
            drawing("interpolation.png (scoring the frames by importance sampling)")
            record, interp = interpolation_study(run, vae, ae, cfg, dataset, device)
            paths.append(
                plot_interpolations(
                    interp,
                    shape,
                    figures / "interpolation.png",
                    title=f"{dataset.name}: decoding straight lines between two test images' "
                    f"codes (right: log p of each frame under {record.plotted_judge})",
                )
            )
        bar.update()
        bar.set_description_str("figures")
    return paths


def _latent_figures(
    run: RunDirectory,
    vae: VAE,
    cfg: RunConfig,
    dataset: ImageDataset,
    device,
    drawing: Callable[[str], None] = lambda what: None,
) -> list[Path]:
    """The learned manifold (decoder means over a grid of the two most active latent
    dimensions, its axes labelled with the z values) and the test set's posterior means
    coloured by class (a t-SNE map for more than two latent dimensions)."""
    x = eval_view(dataset.test, dataset.levels, cfg.data.pixels, "test").to(device)
    activity = vae.activity(x)
    dims = tuple(activity.argsort(descending=True)[:2].tolist())
    per_axis = 15 if vae.latent_dim <= 2 else 10
    grid = vae.latent_grid_means(per_axis if vae.latent_dim > 1 else per_axis**2, dims)
    if vae.latent_dim == 1:
        where = "along its 1-D latent"
    elif vae.latent_dim == 2:
        where = "over its 2-D latent space"
    else:
        where = f"over latent dimensions {dims[0] + 1} and {dims[1] + 1} (the most active)"
    paths = [
        plot_image_grid(
            grid,
            dataset.image_shape,
            run.figures_dir / "manifold.png",
            title=f"{dataset.name}: E[x | z] {where},\nz at the quantiles of {_prior_words(vae)}"
            + (", others at medians" if vae.latent_dim > 2 else ""),
            nrow=per_axis,
            z_axes=_grid_z_axes(vae, dims, per_axis),
        )
    ]
    n = len(x) if vae.latent_dim <= 2 else min(len(x), TSNE_POINTS)  # t-SNE is quadratic
    if vae.latent_dim > 2:
        drawing(f"latent_space.png (t-SNE of {n:,} posterior means)")
    else:
        drawing("latent_space.png")
    points, axis = embed_2d(vae.posterior_means(x[:n]).cpu(), seed=FIGURE_SEED)
    paths.append(
        plot_latent_scatter(
            points,
            dataset.test.labels[:n],
            list(dataset.classes or CLASS_NAMES.get(dataset.name, [str(c) for c in range(10)])),
            run.figures_dir / "latent_space.png",
            title=f"{dataset.name}: posterior means of {n:,} test images",
            axis_label=axis,
        )
    )
    return paths


def _grid_z_axes(vae: VAE, dims: tuple[int, ...], per_axis: int) -> ZAxes | None:
    """The z values along the rows and columns of ``vae.latent_grid_means(per_axis, dims)``
    (which varies ``dims[0]`` down the rows and ``dims[1]`` along the columns); ``None`` for a
    1-D latent space, whose grid is one line read row by row."""
    if vae.latent_dim < 2:
        return None
    axes, _ = vae.latent_axes(per_axis, dims)
    return (f"z_{dims[0] + 1}", axes[0].tolist(), f"z_{dims[1] + 1}", axes[1].tolist())


def _prior_words(vae: VAE) -> str:
    """The prior whose quantiles a manifold grid takes, in a few words."""
    if isinstance(vae.prior, StandardNormalPrior):
        return "N(0, 1)"
    return f"its prior ({type(vae.prior).__name__})"


def _mixture_figure(
    run: RunDirectory, mixture: Mixture, vae: VAE, cfg: RunConfig, dataset: ImageDataset, device
) -> Path:
    n, k = 32, mixture.n_components
    x_test = eval_view(dataset.test, dataset.levels, cfg.data.pixels, "test").to(device)
    dims = tuple(vae.activity(x_test).argsort(descending=True)[:2].tolist())
    with seeded_rng(FIGURE_SEED):
        mixture_samples = mixture.sample(n, generator=torch.Generator().manual_seed(FIGURE_SEED))
        vae_samples = vae.sample(n, mean=False)
        grid = vae.latent_grid_means(8 if vae.latent_dim > 1 else 32, dims)
    grid_title = (
        f"VAE: E[x | z] on a latent grid\n(z_{dims[0] + 1}, z_{dims[1] + 1}: the most active; "
        "the rest at the prior's medians)"
        if len(dims) > 1
        else "VAE: E[x | z] along its 1-D latent"
    )
    order = mixture.weights.argsort(descending=True)[:64]
    name = f"{type(mixture).__name__} (K={k})"
    return plot_image_panels(
        [
            (f"{name}: samples x ~ p(x)", mixture_samples.float()),
            ("VAE: samples x ~ p(x)", vae_samples),
            (f"{name}: component means\n(largest weights first)", mixture.component_means()[order]),
            (grid_title, grid),
        ],
        dataset.image_shape,
        run.figures_dir / "gmm_vs_vae.png",
        title=f"{dataset.name}: a finite mixture against the VAE's continuous mixture",
        z_axes=[None, None, None, _grid_z_axes(vae, dims, 8)],
        ncols=2,
    )


def regenerate_figures(
    run_dir: str | Path,
    device: str = "cpu",
    progress: bool = False,
    data_dir: str | Path | None = None,
    download: bool = True,
    loaded: tuple[RunDirectory, RunConfig, VAE] | None = None,
) -> list[Path]:
    """Redraw a run's figures from its directory alone (no retraining), holding its lock;
    ``data_dir``, ``download``: where the data set is looked for and may be downloaded to
    (see :func:`.run_data.load_run_data`); ``loaded``: the run's model on ``device``, as
    :func:`~.runs.load_vae` returns it, when the caller has it already."""
    with RunDirectory.open(run_dir).writing():
        run, cfg, vae = loaded if loaded is not None else load_vae(run_dir, device)
        dataset = load_run_data(cfg, data_dir, download, run_dir)
        return write_figures(run, vae, cfg, dataset, torch.device(device), progress)
