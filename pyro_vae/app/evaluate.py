"""The evaluation job: importance-sampled log p(x) of a trained run on a data split, written
into its run directory with the model's description."""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from ..data.datasets import ImageDataset
from ..data.pixels import eval_view, log_levels
from ..infer.distributed import SINGLE, ProcessGroup, device_for, sharded_log_marginal
from ..infer.marginal import MarginalEstimate
from ..infer.training import resolve_device
from ..model.vae import VAE
from .config import RunConfig
from .registry import describe_parts
from .runs import RunDirectory, load_vae
from .train import load_data


def evaluate(
    vae: VAE,
    cfg: RunConfig,
    dataset: ImageDataset,
    device: torch.device,
    num_samples: int = 5000,
    split: str = "test",
    seed: int = 0,
    progress: bool = False,
    group: ProcessGroup = SINGLE,
) -> tuple[dict[str, Any], MarginalEstimate]:
    """Importance-sampled log p(x) of a split (fixed binarization/dequantization), with the
    ELBO from the same draws, standard errors, ESS and Pareto k-hat; nats per image. With
    several processes (``group``) each takes a block of the images and all get every image's
    result, the same as one process's."""
    x = eval_view(dataset.split(split), dataset.levels, cfg.data.pixels, split).to(device)
    start = time.perf_counter()
    estimate = sharded_log_marginal(
        vae.model, vae.guide, x, num_samples, seed=seed, progress=progress, group=group
    )
    summary = estimate.summary(dataset.data_dim, log_levels(cfg.data.pixels, dataset.levels))
    return {
        "dataset": dataset.name,
        "split": split,
        "pixels": cfg.data.pixels,
        "seed": seed,
        **summary,
        "seconds": time.perf_counter() - start,
        "model": describe_parts(vae, cfg.model),
    }, estimate


def save_evaluation(run: RunDirectory, summary: dict[str, Any], estimate: MarginalEstimate) -> None:
    """``evaluation.json`` and ``evaluation_points.pt`` (per-image values) for the test split;
    ``evaluation_<split>.json`` and ``evaluation_<split>_points.pt`` for another split."""
    suffix = "" if summary.get("split", "test") == "test" else f"_{summary['split']}"
    with run.writing():
        run.write_json(f"evaluation{suffix}.json", summary)
        run.save_tensors(
            f"evaluation{suffix}_points.pt",
            {
                "log_px": estimate.log_px,
                "elbo": estimate.elbo,
                "ess": estimate.ess,
                "khat": estimate.khat,
                "num_samples": estimate.num_samples,
            },
        )


def evaluate_run(
    run_dir: str | Path,
    num_samples: int = 5000,
    split: str = "test",
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    group: ProcessGroup = SINGLE,
) -> dict[str, Any]:
    """``pyro-vae evaluate``: log p(x) of a trained run, written into its directory (holding
    its lock from loading the model to writing the result; with several processes, process
    0 holds it and writes, the others only read)."""
    dev = resolve_device(device_for(device, group))
    with RunDirectory.open(run_dir).writing() if group.is_main else nullcontext():
        run, cfg, vae = load_vae(run_dir, dev)
        dataset = load_data(cfg)
        summary, estimate = evaluate(
            vae, cfg, dataset, dev, num_samples, split, seed, progress, group
        )
        if group.is_main:
            save_evaluation(run, summary, estimate)
    return summary
