"""The evaluation job: log p(x) of a trained run on a data split, by importance sampling or
annealed importance sampling, and the BDMC sandwich on simulated images; each result is added
to the run directory under its own key (see :mod:`.evaluations`)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import torch

from ..config.capabilities import AIS_FROM_GUIDE, guide_density_problem
from ..data.datasets import ImageDataset
from ..data.pixels import eval_view, log_levels
from ..errors import ConfigError
from ..infer.ais import STARTS, AISEstimate
from ..infer.bdmc import BDMCResult, bdmc
from ..infer.distributed import (
    SINGLE,
    ProcessGroup,
    sharded_log_marginal,
    sharded_log_marginal_ais,
)
from ..infer.marginal import MarginalEstimate
from ..infer.memory import check_memory, estimate_ais_memory, estimate_memory
from ..infer.refine import refine_problem, refined_log_marginal
from ..model.vae import VAE
from ..store.evaluation import (
    AISEvaluation,
    BDMCEvaluation,
    Estimate,
    GapsEvaluation,
    ISEvaluation,
    estimate_from_json,
)
from .config import RunConfig
from .describe import describe_parts
from .evaluations import save_estimate
from .gaps import GapPoints, compute_gaps, vae_extra_sites
from .run_data import example_word
from .runs import RunDirectory

METHODS = ("is", "ais", "gaps")
DEFAULT_REFINE_STEPS = 200
"""Adam steps of the per-image refinement in ``evaluate --gaps`` (``--refine-steps``)."""


@dataclass
class Evaluated:
    """What ``pyro-vae evaluate`` computed: the estimate of a split, the BDMC sandwich."""

    evaluation: Estimate | None = None
    bdmc: BDMCEvaluation | None = None
    gaps: GapsEvaluation | None = None
    noun: str = "image"
    """What the run's examples are called (:func:`~.run_data.example_word`)."""

    def keys(self) -> list[str]:
        """The keys the results were kept under, in order."""
        return [r.key for r in (self.evaluation, self.gaps, self.bdmc) if r is not None]


@dataclass
class Estimator:
    """How to estimate log p(x): ``method="is"`` with K = ``num_samples`` guide draws, or
    ``method="ais"`` with T = ``num_steps``, C = ``num_chains``, L = ``num_leapfrog``, from
    the guide or the prior (``start``); ``images``: only the split's first that many."""

    method: str = "is"
    num_samples: int = 5000
    num_steps: int = 100
    num_chains: int = 8
    num_leapfrog: int = 5
    start: str = "guide"
    seed: int = 0
    images: int | None = None
    refine_steps: int | None = None
    """IS: the proposal is q refined per image for that many steps; gaps: the refinement's
    budget (:mod:`pyro_vae.infer.refine`)."""

    def check(self, vae: VAE) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"--method {self.method!r}: choose from {', '.join(METHODS)}")
        if self.start not in STARTS:
            raise ConfigError(f"--ais-start {self.start!r}: choose from {', '.join(STARTS)}")
        if self.refine_steps is not None or self.method == "gaps":
            problem = refine_problem(vae.encoder)
            if problem:
                raise ConfigError(f"{'--gaps' if self.method == 'gaps' else '--refine'}: {problem}")
        if self.method in ("ais", "gaps") and self.start == "guide":
            problem = guide_density_problem(AIS_FROM_GUIDE, vae.encoder)
            if problem:
                raise ConfigError(problem)


def tensor_fingerprint(x: torch.Tensor) -> str:
    """SHA-256 of a tensor's values (dtype and shape included): two evaluations with the same
    fingerprint scored the very same test tensor, so their per-image values can be paired."""
    digest = hashlib.sha256(f"{x.dtype}{tuple(x.shape)}".encode())
    digest.update(x.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _header(cfg: RunConfig, dataset: ImageDataset, split: str, seed: int, vae: VAE) -> dict:
    return {
        "dataset": dataset.name,
        "split": split,
        "pixels": cfg.data.pixels,
        "seed": seed,
        "model": describe_parts(vae, cfg.model),
    }


def evaluate(
    vae: VAE,
    cfg: RunConfig,
    dataset: ImageDataset,
    device: torch.device,
    num_samples: int = 5000,
    split: str = "test",
    seed: int = 0,
    progress: bool = False,
    estimator: Estimator | None = None,
    group: ProcessGroup = SINGLE,
) -> tuple[Estimate, MarginalEstimate | AISEstimate]:
    """log p(x) of a split (fixed binarization/dequantization), nats per image, with standard
    errors and the method's diagnostics (IS: the ELBO from the same draws, ESS, Pareto k-hat;
    AIS: acceptance rates, ESS over chains). Default: importance sampling with K =
    ``num_samples``. With several processes (``group``) each takes a block of the images and
    all get every image's result, the same as one process's."""
    est = estimator or Estimator(num_samples=num_samples, seed=seed)
    est.check(vae)
    x = evaluation_images(cfg, dataset, split, est.images, device)
    start = time.perf_counter()
    levels = log_levels(cfg.data.pixels, dataset.levels)
    if est.method == "is" and est.refine_steps is not None:
        if group.active:
            raise ConfigError("--refine runs in one process (not under torchrun)")
        result = refined_log_marginal(
            vae.model,
            vae.encoder,
            x,
            est.num_samples,
            steps=est.refine_steps,
            extra_sites=vae_extra_sites(vae),
            seed=est.seed,
            progress=progress,
        )
        summary = result.summary(dataset.data_dim, levels)
    elif est.method == "is":
        result: MarginalEstimate | AISEstimate = sharded_log_marginal(
            vae.model, vae.guide, x, est.num_samples, seed=est.seed, progress=progress, group=group
        )
        summary = result.summary(dataset.data_dim, levels)
    else:
        result = sharded_log_marginal_ais(
            vae.model,
            vae.guide,
            x,
            num_steps=est.num_steps,
            num_chains=est.num_chains,
            num_leapfrog=est.num_leapfrog,
            start=est.start,
            seed=est.seed,
            progress=progress,
            group=group,
        )
        summary = result.summary(dataset.data_dim, levels)
    record = estimate_from_json(
        {
            **_header(cfg, dataset, split, est.seed, vae),
            **({"first_images": est.images} if est.images is not None else {}),
            "data_sha256": tensor_fingerprint(x),
            **summary.to_json(),
            **(
                {"refine_steps": est.refine_steps}
                if est.method == "is" and est.refine_steps
                else {}
            ),
            "seconds": time.perf_counter() - start,
        }
    )
    assert isinstance(record, ISEvaluation | AISEvaluation)
    return record, result


def evaluation_images(
    cfg: RunConfig, dataset: ImageDataset, split: str, images: int | None, device: torch.device
) -> torch.Tensor:
    """The split as evaluated (fixed binarization/dequantization), its first ``images``."""
    x = eval_view(dataset.split(split), dataset.levels, cfg.data.pixels, split).to(device)
    if images is not None:
        if images > len(x):
            raise ConfigError(
                f"--images {images}: the {split} split has {len(x)} {example_word(cfg.data)}s"
            )
        x = x[:images]
    return x


def evaluate_gaps(
    vae: VAE,
    cfg: RunConfig,
    dataset: ImageDataset,
    device: torch.device,
    est: Estimator,
    split: str = "test",
    progress: bool = False,
) -> tuple[GapsEvaluation, GapPoints]:
    """The inference gaps of a split (:mod:`.gaps`): the record and the per-image values."""
    est.check(vae)
    x = evaluation_images(cfg, dataset, split, est.images, device)
    fields, points = compute_gaps(
        vae,
        x,
        refine_steps=est.refine_steps if est.refine_steps is not None else DEFAULT_REFINE_STEPS,
        num_samples=est.num_samples,
        num_steps=est.num_steps,
        num_chains=est.num_chains,
        num_leapfrog=est.num_leapfrog,
        start=est.start,
        seed=est.seed,
        progress=progress,
    )
    header = _header(cfg, dataset, split, est.seed, vae)
    first = {"first_images": est.images} if est.images is not None else {}
    fingerprint = {"data_sha256": tensor_fingerprint(x)}
    return GapsEvaluation.from_json({**header, **first, **fingerprint, **fields}), points


def estimate_points(estimate: MarginalEstimate | AISEstimate) -> dict[str, Any]:
    """The per-image values kept beside a summary (for paired differences)."""
    if isinstance(estimate, AISEstimate):
        return {
            "log_px": estimate.log_px,
            "log_weights": estimate.log_weights,
            "acceptance": estimate.acceptance,
            "step_size": estimate.step_size,
        }
    return {
        "log_px": estimate.log_px,
        "elbo": estimate.elbo,
        "ess": estimate.ess,
        "khat": estimate.khat,
        "num_samples": estimate.num_samples,
    }


def save_evaluation(
    run: RunDirectory, summary: Estimate, estimate: MarginalEstimate | AISEstimate
) -> str:
    """Add an evaluation to the run (``evaluation[_<split>].json`` under its key, per-image
    values beside it); returns the key."""
    return save_estimate(run, summary, estimate_points(estimate), summary.split or "test")


def run_bdmc(
    vae: VAE,
    cfg: RunConfig,
    dataset: ImageDataset,
    device: torch.device,
    num_images: int,
    estimator: Estimator,
    progress: bool = False,
) -> tuple[BDMCEvaluation, BDMCResult]:
    """The BDMC sandwich on ``num_images`` images simulated from the trained model, with AIS
    as ``estimator`` says, and importance sampling with K = ``estimator.num_samples`` on the
    same images."""
    estimator.check(vae)
    like = eval_view(dataset.split("test"), dataset.levels, cfg.data.pixels, "test")
    x_like = like[:1].expand(num_images, *like.shape[1:]).to(device)
    start = time.perf_counter()
    result = bdmc(
        vae.model,
        vae.guide,
        x_like,
        num_steps=estimator.num_steps,
        num_chains=estimator.num_chains,
        num_leapfrog=estimator.num_leapfrog,
        start=estimator.start,
        num_samples=estimator.num_samples,
        seed=estimator.seed,
        progress=progress,
    )
    summary = {
        **_header(cfg, dataset, "simulated", estimator.seed, vae),
        **result.summary().to_json(),
        "num_examples": num_images,
        "seconds": time.perf_counter() - start,
    }
    return BDMCEvaluation.from_json(summary), result


def save_bdmc(run: RunDirectory, summary: BDMCEvaluation, result: BDMCResult) -> str:
    points = {"log_px": result.forward.log_px, "upper": result.reverse.log_px}
    if result.importance is not None:
        points["is_log_px"] = result.importance.log_px
    return save_estimate(run, summary, points, "test")


def check_ais_fits(
    vae: VAE,
    cfg: RunConfig,
    dataset: ImageDataset,
    device: torch.device,
    estimator: Estimator | None,
    split: str,
    bdmc_images: int,
    sandwich: Estimator | None,
) -> None:
    """Refuse (:class:`~pyro_vae.errors.InsufficientMemoryError`) AIS settings or a BDMC
    sandwich that would need more memory than ``device`` has free, before allocating any."""
    sizes = (dataset.data_dim, cfg.model.latent_dim)
    if estimator is not None and estimator.method == "ais":
        T, C = estimator.num_steps, estimator.num_chains
        need = estimate_ais_memory(vae, *sizes, T, C, len(dataset.split(split)))
        check_memory(need, device, what=f"AIS with --steps {T} --chains {C}")
    if bdmc_images and sandwich is not None:
        T, C = sandwich.num_steps, sandwich.num_chains
        what = f"--bdmc {bdmc_images} with --steps {T} --chains {C}"
        need = estimate_ais_memory(vae, *sizes, T, C, bdmc_images, simulated=True)
        check_memory(need, device, what=what)
        if sandwich.num_samples:
            need = estimate_memory(
                vae, *sizes, batch_size=1, num_samples=sandwich.num_samples, num_test=bdmc_images
            )
            check_memory(need, device, what=f"{what} --num-samples {sandwich.num_samples}")
