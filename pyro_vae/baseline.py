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
from typing import Any

import torch

from .config import RunConfig
from .datasets import ImageDataset
from .gmm import BernoulliMixture, GaussianMixture, Mixture
from .likelihoods import LIKELIHOODS
from .pixels import eval_view, log_levels

DEFAULT_COMPONENTS = (1, 10, 50)


def mixture_for(cfg: RunConfig, n_components: int, seed: int = 0) -> Mixture:
    """The mixture that matches the run's likelihood family."""
    kind = getattr(LIKELIHOODS.get(cfg.model.likelihood), "data_kind", "binary")
    if kind == "binary":
        return BernoulliMixture(n_components, seed=seed)
    return GaussianMixture(n_components, covariance="diag", seed=seed)


def fit_baselines(
    cfg: RunConfig,
    dataset: ImageDataset,
    components: Sequence[int] = DEFAULT_COMPONENTS,
    split: str = "test",
    max_iter: int = 200,
    progress: bool = False,
) -> tuple[list[dict[str, Any]], dict[int, Mixture]]:
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
            {
                "model": f"{type(mixture).__name__}(K={k})",
                "n_components": k,
                "log_px": mean,
                "log_px_se": log_px.std().item() / math.sqrt(len(log_px)),
                "val_log_px": mixture.score(x_val),
                "bits_per_dim": (-mean + d * offset) / (d * math.log(2)),
                "num_parameters": mixture.num_parameters,
                "em_iterations": len(mixture.history) - 1,
                "train_log_px": mixture.history[-1],
                "seconds": seconds,
            }
        )
        fitted[k] = mixture
    return rows, fitted


def best_by_validation(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The mixture with the highest validation log p(x): chosen without the test images."""
    return max(rows, key=lambda r: r["val_log_px"])


def paired_difference(vae_log_px: torch.Tensor, mixture: Mixture, x: torch.Tensor) -> dict:
    """VAE minus mixture log p(x) per image: mean and its standard error (same images)."""
    diff = vae_log_px.double() - mixture.log_prob(x)
    return {"mean": diff.mean().item(), "se": diff.std().item() / math.sqrt(len(diff))}
