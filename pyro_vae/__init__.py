"""pyro-vae: variational autoencoders as Pyro probabilistic programs.

The public API. A VAE is a Pyro ``model(x)`` and ``guide(x)`` composed from swappable parts
(prior, guide/encoder, decoder, likelihood); training is SVI; everything downstream talks to the
program through Pyro's interfaces.

Names are imported on first use (PEP 562), so that ``import pyro_vae`` and the command line's
``--help`` do not load torch, Pyro or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app.checkpoint import load_checkpoint, save_checkpoint
    from .app.config import RunConfig
    from .app.describe import describe_parts
    from .app.evaluate import Estimator
    from .app.evaluations import Evaluations, read_evaluations
    from .app.part_import import resolve_part
    from .app.runs import RunDirectory, load_vae
    from .app.vae_build import build_part, build_vae, load_model_state, resolve
    from .config import DataConfig, ModelConfig, TrainConfig
    from .config.names import part_names
    from .data.datasets import DATASETS, ImageDataset, Split, load_dataset
    from .data.idx import read_idx, write_idx
    from .data.pixels import PIXEL_SCHEMES, binarize, dequantize, eval_view, train_view
    from .errors import (
        CheckpointError,
        ConfigError,
        DataFormatError,
        DatasetUnavailableError,
        DistributedError,
        InsufficientMemoryError,
        PyroVAEError,
        TrainingDivergedError,
        TrainingInterrupted,
    )
    from .infer.ais import AISEstimate, log_marginal_ais
    from .infer.bdmc import BDMCResult, bdmc, simulate
    from .infer.distributed import ProcessGroup, init_from_environment, sharded_log_marginal
    from .infer.marginal import MarginalEstimate, log_importance_weights, log_marginal, pareto_khat
    from .infer.memory import MemoryEstimate, available_memory, check_memory, estimate_memory
    from .infer.objectives import ELBOS
    from .infer.training import EpochRecord, ImageData, TensorData, Trainer, heldout_elbo
    from .jobs.evaluate import evaluate_run
    from .jobs.run import run_main_job
    from .model.conv import ConvDecoder, ConvEncoder
    from .model.decoders import DECODERS, MLPDecoder
    from .model.guides import GUIDES, DiagonalGaussianGuide
    from .model.likelihoods import LIKELIHOODS, BernoulliLikelihood
    from .model.mixtures import BernoulliMixture, GaussianMixture
    from .model.nets import MLP
    from .model.parts import Decoder, Guide, Likelihood, Prior
    from .model.priors import PRIORS, StandardNormalPrior
    from .model.vae import VAE
    from .rng import seeded_rng

__version__ = "0.3.0"  # the one place: pyproject.toml reads it, CHANGELOG.md names it

_EXPORTS: dict[str, str] = {
    "InsufficientMemoryError": "errors",
    "MemoryEstimate": "infer.memory",
    "available_memory": "infer.memory",
    "check_memory": "infer.memory",
    "estimate_memory": "infer.memory",
    "DistributedError": "errors",
    "ProcessGroup": "infer.distributed",
    "init_from_environment": "infer.distributed",
    "sharded_log_marginal": "infer.distributed",
    "AISEstimate": "infer.ais",
    "BDMCResult": "infer.bdmc",
    "bdmc": "infer.bdmc",
    "Estimator": "app.evaluate",
    "Evaluations": "app.evaluations",
    "log_marginal_ais": "infer.ais",
    "read_evaluations": "app.evaluations",
    "simulate": "infer.bdmc",
    "BernoulliLikelihood": "model.likelihoods",
    "BernoulliMixture": "model.mixtures",
    "GaussianMixture": "model.mixtures",
    "binarize": "data.pixels",
    "build_part": "app.vae_build",
    "build_vae": "app.vae_build",
    "CheckpointError": "errors",
    "ConfigError": "errors",
    "DataConfig": "config",
    "DataFormatError": "errors",
    "DATASETS": "data.datasets",
    "DatasetUnavailableError": "errors",
    "Decoder": "model.parts",
    "DECODERS": "model.decoders",
    "dequantize": "data.pixels",
    "describe_parts": "app.describe",
    "DiagonalGaussianGuide": "model.guides",
    "ELBOS": "infer.objectives",
    "EpochRecord": "infer.training",
    "eval_view": "data.pixels",
    "evaluate_run": "jobs.evaluate",
    "Guide": "model.parts",
    "GUIDES": "model.guides",
    "heldout_elbo": "infer.training",
    "ImageData": "infer.training",
    "ImageDataset": "data.datasets",
    "Likelihood": "model.parts",
    "LIKELIHOODS": "model.likelihoods",
    "load_checkpoint": "app.checkpoint",
    "load_dataset": "data.datasets",
    "load_model_state": "app.vae_build",
    "load_vae": "app.runs",
    "log_importance_weights": "infer.marginal",
    "log_marginal": "infer.marginal",
    "MarginalEstimate": "infer.marginal",
    "MLP": "model.nets",
    "MLPDecoder": "model.decoders",
    "ConvDecoder": "model.conv",
    "ConvEncoder": "model.conv",
    "ModelConfig": "config",
    "pareto_khat": "infer.marginal",
    "part_names": "config.names",
    "PIXEL_SCHEMES": "data.pixels",
    "Prior": "model.parts",
    "PRIORS": "model.priors",
    "PyroVAEError": "errors",
    "read_idx": "data.idx",
    "resolve": "app.vae_build",
    "resolve_part": "app.part_import",
    "run_main_job": "jobs.run",
    "RunConfig": "app.config",
    "RunDirectory": "app.runs",
    "save_checkpoint": "app.checkpoint",
    "seeded_rng": "rng",
    "Split": "data.datasets",
    "StandardNormalPrior": "model.priors",
    "TensorData": "infer.training",
    "train_view": "data.pixels",
    "TrainConfig": "config",
    "Trainer": "infer.training",
    "TrainingDivergedError": "errors",
    "TrainingInterrupted": "errors",
    "VAE": "model.vae",
    "write_idx": "data.idx",
}
"""Where each public name lives (imported on first use)."""


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "AISEstimate",
    "BDMCResult",
    "Estimator",
    "Evaluations",
    "bdmc",
    "log_marginal_ais",
    "read_evaluations",
    "simulate",
    "BernoulliLikelihood",
    "BernoulliMixture",
    "CheckpointError",
    "ConfigError",
    "DATASETS",
    "ConvDecoder",
    "ConvEncoder",
    "DECODERS",
    "DataConfig",
    "DataFormatError",
    "DatasetUnavailableError",
    "DistributedError",
    "Decoder",
    "DiagonalGaussianGuide",
    "ELBOS",
    "EpochRecord",
    "GUIDES",
    "GaussianMixture",
    "Guide",
    "ImageData",
    "ImageDataset",
    "InsufficientMemoryError",
    "LIKELIHOODS",
    "Likelihood",
    "MLP",
    "MLPDecoder",
    "MarginalEstimate",
    "MemoryEstimate",
    "ModelConfig",
    "PIXEL_SCHEMES",
    "PRIORS",
    "ProcessGroup",
    "Prior",
    "PyroVAEError",
    "RunConfig",
    "RunDirectory",
    "Split",
    "StandardNormalPrior",
    "TensorData",
    "TrainConfig",
    "Trainer",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "VAE",
    "available_memory",
    "binarize",
    "check_memory",
    "build_part",
    "build_vae",
    "dequantize",
    "describe_parts",
    "estimate_memory",
    "eval_view",
    "evaluate_run",
    "heldout_elbo",
    "init_from_environment",
    "load_checkpoint",
    "load_dataset",
    "load_model_state",
    "load_vae",
    "log_importance_weights",
    "log_marginal",
    "pareto_khat",
    "part_names",
    "read_idx",
    "resolve",
    "resolve_part",
    "run_main_job",
    "save_checkpoint",
    "seeded_rng",
    "sharded_log_marginal",
    "train_view",
    "write_idx",
]
