"""The autoencoder trained beside a VAE, and the interpolation study that compares them:
straight lines between the codes of two test images, decoded by each model and scored by
judges that decoded neither (the VAE's log p(x), the best finite mixture's)."""

from __future__ import annotations

import math
from typing import Any

import torch

from ..data.datasets import ImageDataset
from ..data.pixels import eval_view, pixel_scheme
from ..errors import CheckpointError
from ..infer.autoencoder import train_autoencoder
from ..infer.training import ImageData
from ..model.autoencoder import Autoencoder
from ..model.vae import VAE
from ..store.interpolation import INTERPOLATION_FORMAT, Interpolation, JudgeScores
from .baseline import best_mixture
from .checkpoint import load_checkpoint
from .config import RunConfig
from .latent import choose_pairs, interpolation_paths, score_paths
from .runs import RunDirectory
from .vae_build import load_model_state

FIGURE_SEED = 0
"""Seed of everything random in a figure (pairs, samples), so redraws do not change."""


def train_run_autoencoder(
    run: RunDirectory,
    cfg: RunConfig,
    dataset: ImageDataset,
    device,
    progress: bool = False,
    epochs: int | None = None,
) -> Autoencoder:
    """The plain autoencoder with the VAE's network shapes, on the same data and schedule
    (``epochs``: that many instead of the VAE's); saved as ``autoencoder.pt`` (holding the
    run's lock throughout)."""
    with run.writing():
        return _train_run_autoencoder(run, cfg, dataset, device, progress, epochs)


def _train_run_autoencoder(
    run: RunDirectory,
    cfg: RunConfig,
    dataset: ImageDataset,
    device,
    progress: bool,
    epochs: int | None = None,
) -> Autoencoder:
    torch.manual_seed(cfg.train.seed)
    ae = Autoencoder(
        dataset.data_dim,
        cfg.model.latent_dim,
        cfg.model.hidden,
        cfg.model.activation,
        binary=not pixel_scheme(cfg.data.pixels).density,
    )
    data = ImageData(dataset, cfg.data.pixels, device)
    history = train_autoencoder(
        ae,
        data,
        cfg.train.epochs if epochs is None else epochs,
        cfg.train.batch_size,
        cfg.train.lr,
        device,
        progress,
    )
    run.save_tensors(
        "autoencoder.pt", {"model": ae.state_dict(), "history": history, "binary": ae.binary}
    )
    return ae


def load_run_autoencoder(run: RunDirectory, cfg: RunConfig, dataset: ImageDataset, device):
    if not run.has_file("autoencoder.pt"):
        return None
    path = run.file("autoencoder.pt")
    state = load_checkpoint(path, map_location=device, root=run.path)
    if not isinstance(state.get("binary"), bool):
        raise CheckpointError(f"{path}: 'binary' must be true or false; delete the file")
    ae = Autoencoder(
        dataset.data_dim,
        cfg.model.latent_dim,
        cfg.model.hidden,
        cfg.model.activation,
        binary=state["binary"],
    )
    load_model_state(ae, state.get("model"), path)  # every key and shape checked first
    return ae.to(device).eval()


def interpolation_study(
    run: RunDirectory,
    vae: VAE,
    ae: Autoencoder,
    cfg: RunConfig,
    dataset: ImageDataset,
    device,
    n_pairs: int = 20,
    steps: int = 9,
    num_samples: int = 200,
    judges: dict[str, Any] | None = None,
    output: str = "interpolation.json",
) -> tuple[Interpolation, list]:
    """Straight lines between the codes of pairs of test images ("2" to "9" where there are
    such labels), decoded by the autoencoder and by the VAE. Each frame (as its most probable
    binary image, for binary data) is scored by every judge (default: the exact log p(x) of
    the run's best finite mixture, a model trained on the same data that decoded neither path,
    then the VAE's importance-sampled log p(x), the VAE judging itself). The figure uses the
    first judge: the neutral one where there is one. Writes ``output`` into the run
    directory."""
    pixels = cfg.data.pixels
    x = eval_view(dataset.test, dataset.levels, pixels, "test").to(device)
    pairs = choose_pairs(dataset.test.labels, n_pairs, seed=FIGURE_SEED)
    x_a, x_b = x[pairs[:, 0]], x[pairs[:, 1]]
    binary = not pixel_scheme(pixels).density
    if judges is None:  # the neutral judge first: the figure shows its scores
        judges = {}
        mixture = best_mixture(run, dataset.data_dim)
        if mixture is not None:
            judges[f"{type(mixture).__name__}(K={mixture.n_components})"] = mixture
        judges["VAE"] = vae
    decoded = {
        "autoencoder": interpolation_paths(ae.encode, ae.decode, x_a, x_b, steps),
        "VAE": interpolation_paths(
            vae.posterior_means, lambda z: vae.decode(z).mean, x_a, x_b, steps
        ),
    }
    inner = slice(1, steps - 1)  # the endpoints are (nearly) the images themselves
    scored: dict[str, JudgeScores] = {}
    plotted = []
    for judge_name, judge in judges.items():
        scores = {
            name: score_paths(judge, frames, binary=binary, num_samples=num_samples).cpu()
            for name, frames in decoded.items()
        }
        diff = scores["VAE"][:, inner].mean(1) - scores["autoencoder"][:, inner].mean(1)
        scored[judge_name] = JudgeScores(
            autoencoder_mean_log_px=scores["autoencoder"][:, inner].double().mean().item(),
            vae_mean_log_px=scores["VAE"][:, inner].double().mean().item(),
            vae_minus_autoencoder=diff.double().mean().item(),
            vae_minus_autoencoder_se=diff.double().std().item() / math.sqrt(len(diff)),
        )
        if not plotted:  # the figure shows the first judge's scores
            plotted = [(name, decoded[name].cpu(), scores[name]) for name in decoded]
    result = Interpolation(
        format=INTERPOLATION_FORMAT,
        pairs=n_pairs,
        steps=steps,
        classes=(int(dataset.test.labels[pairs[0, 0]]), int(dataset.test.labels[pairs[0, 1]])),
        frames="most probable binary image of each frame" if binary else "frames as decoded",
        judges=scored,
        plotted_judge=next(iter(scored), None),
    )
    run.write_json(output, result.to_json())
    return result, plotted
