"""The finite-mixture baseline on the same data, with the same metric as the VAE.

For a run with a binary likelihood the baseline is a mixture of Bernoullis fitted to the
training set's fixed binarization; for a continuous likelihood, a diagonal Gaussian mixture
fitted to its fixed dequantization. Both are scored on exactly the tensor the VAE's log p(x) is
estimated on (the test split's fixed binarization or dequantization), exactly: nats per image
and bits per dimension, with the standard error over images.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch

from ..data.datasets import ImageDataset
from ..data.pixels import eval_view, log_levels, pixel_scheme
from ..errors import ConfigError
from ..infer.marginal import MarginalEstimate
from ..model.mixtures import BernoulliMixture, GaussianMixture, Mixture
from ..model.vae import VAE
from ..store.baseline import (
    BASELINE_FORMAT,
    Baseline,
    MixtureScore,
    PairedDifference,
    VAEScore,
)
from .checkpoint import load_checkpoint
from .config import RunConfig
from .describe import describe_parts, model_summary
from .run_tensors import checked_mixture
from .runs import RunDirectory

DEFAULT_COMPONENTS = (1, 10, 50)


def mixture_for(cfg: RunConfig, n_components: int, seed: int = 0) -> Mixture:
    """The mixture that matches the run's data: Bernoullis for binary (or grey) pixels, diagonal
    Gaussians for dequantized ones."""
    if not pixel_scheme(cfg.data.pixels).density:
        return BernoulliMixture(n_components, seed=seed)
    return GaussianMixture(n_components, covariance="diag", seed=seed)


def check_components(components: Sequence[int], num_train: int) -> None:
    """Refuse (``--baseline-components``) a mixture with more components than there are
    training images, before anything is trained (:func:`fit_baselines` would skip it)."""
    too_many = [k for k in components if k > num_train]
    if too_many:
        raise ConfigError(
            f"--baseline-components {too_many[0]}: a mixture can have at most as many "
            f"components as there are training images ({num_train}); give K <= {num_train}"
        )


def fit_baselines(
    cfg: RunConfig,
    dataset: ImageDataset,
    components: Sequence[int] = DEFAULT_COMPONENTS,
    split: str = "test",
    max_iter: int = 200,
    progress: bool = False,
) -> tuple[list[MixtureScore], dict[int, Mixture]]:
    """Fit one mixture per K by EM; exact log p(x) of ``split`` and of the validation split for
    each (the validation number is the one to choose K by).

    Returns a summary row per K and the fitted mixtures (K values larger than the training set
    are skipped).
    """
    x_train = eval_view(dataset.train, dataset.levels, cfg.data.pixels, "train")
    x_val = eval_view(dataset.val, dataset.levels, cfg.data.pixels, "val")
    x_test = eval_view(dataset.split(split), dataset.levels, cfg.data.pixels, split)
    offset = log_levels(cfg.data.pixels, dataset.levels)
    rows, fitted = [], {}
    for k in components:
        if k > len(x_train):
            continue
        mixture = mixture_for(cfg, k, seed=cfg.train.seed)
        start = time.perf_counter()
        mixture.fit(x_train, "em", max_iter=max_iter, progress=progress)
        seconds = time.perf_counter() - start
        log_px = mixture.log_prob(x_test)
        d = x_test.shape[1]
        mean = log_px.mean().item()
        rows.append(
            MixtureScore(
                model=f"{type(mixture).__name__}(K={k})",
                n_components=k,
                log_px=mean,
                log_px_se=log_px.std().item() / math.sqrt(len(log_px)),
                val_log_px=mixture.score(x_val),
                bits_per_dim=(-mean + d * offset) / (d * math.log(2)),
                num_parameters=mixture.num_parameters,
                em_iterations=len(mixture.history) - 1,
                train_log_px=mixture.history[-1],
                seconds=seconds,
            )
        )
        fitted[k] = mixture
    return rows, fitted


def best_by_validation(rows: list[MixtureScore]) -> MixtureScore:
    """The mixture with the highest validation log p(x): chosen without the test images."""
    return max(rows, key=lambda r: -math.inf if r.val_log_px is None else r.val_log_px)


def paired_difference(
    vae_log_px: torch.Tensor, mixture: Mixture, x: torch.Tensor
) -> PairedDifference:
    """VAE minus mixture log p(x) per image: mean and its standard error (same images)."""
    diff = vae_log_px.double() - mixture.log_prob(x)
    return PairedDifference(mean=diff.mean().item(), se=diff.std().item() / math.sqrt(len(diff)))


def compare_with_mixtures(
    run: RunDirectory,
    vae: VAE,
    cfg: RunConfig,
    dataset: ImageDataset,
    estimate: MarginalEstimate,
    components: Sequence[int] = DEFAULT_COMPONENTS,
    progress: bool = False,
    fitted: tuple[list[MixtureScore], dict[int, Mixture]] | None = None,
) -> Baseline | None:
    """The finite-mixture baseline on the same split and metric (exact log p(x)), the VAE's
    paired difference to the best mixture; ``baseline.json`` and ``baseline_mixtures.pt``.
    ``fitted``: mixtures already fitted by :func:`fit_baselines` for this data and pixels."""
    rows, mixtures = fitted or fit_baselines(cfg, dataset, components, progress=progress)
    if not rows:
        return None
    x_test = eval_view(dataset.test, dataset.levels, cfg.data.pixels, "test")
    best = best_by_validation(rows)
    levels = log_levels(cfg.data.pixels, dataset.levels)
    summary = estimate.summary(dataset.data_dim, levels).checked()
    description = describe_parts(vae, cfg.model)
    payload = Baseline(
        format=BASELINE_FORMAT,
        dataset=dataset.name,
        pixels=cfg.data.pixels,
        vae=VAEScore(
            model=model_summary(description),
            parts=description["parts"],
            log_px=summary.log_px,
            log_px_se=summary.log_px_se,
            bits_per_dim=summary.bits_per_dim,
            num_parameters=description["parameters"],
            generative_parameters=description["generative_parameters"],
            num_samples=estimate.num_samples,
        ),
        mixtures=tuple(rows),
        best_mixture=best.model,
        best_chosen_by="validation log p(x)",
        vae_minus_best_mixture=paired_difference(
            estimate.log_px, mixtures[best.n_components], x_test
        ),
    )
    with run.writing():
        run.write_json("baseline.json", payload.to_json())
        run.save_tensors(
            "baseline_mixtures.pt",
            {"mixtures": [m.state_dict() for m in mixtures.values()], "best": best.n_components},
        )
    return payload


def best_mixture(run: RunDirectory, data_dim: int | None = None) -> Mixture | None:
    """The best finite mixture of the run's baseline, if it has one (checked, over
    ``data_dim`` dimensions when given: the file may come from someone else)."""
    if not run.has_file("baseline_mixtures.pt"):
        return None
    path = run.file("baseline_mixtures.pt")
    return checked_mixture(load_checkpoint(path, root=run.path), path, data_dim)
