"""pyro-vae: variational autoencoders as Pyro probabilistic programs.

The public API. A VAE is a Pyro ``model(x)`` and ``guide(x)`` composed from swappable parts
(prior, guide/encoder, decoder, likelihood); training is SVI; everything downstream talks to the
program through Pyro's interfaces.
"""

from .app.checkpoint import load_checkpoint, save_checkpoint
from .app.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from .app.evaluate import evaluate_run
from .app.main_job import run_main_job
from .app.registry import (
    build_part,
    build_vae,
    describe_parts,
    load_model_state,
    part_names,
    resolve,
    resolve_part,
)
from .app.runs import RunDirectory, load_vae
from .data.datasets import DATASETS, ImageDataset, Split, load_dataset
from .data.idx import read_idx, write_idx
from .data.pixels import PIXEL_SCHEMES, binarize, dequantize, eval_view, train_view
from .errors import (
    CheckpointError,
    ConfigError,
    DataFormatError,
    DatasetUnavailableError,
    InsufficientMemoryError,
    PyroVAEError,
    TrainingDivergedError,
    TrainingInterrupted,
)
from .infer.marginal import MarginalEstimate, log_importance_weights, log_marginal, pareto_khat
from .infer.memory import MemoryEstimate, available_memory, check_memory, estimate_memory
from .infer.objectives import ELBOS
from .infer.training import EpochRecord, ImageData, TensorData, Trainer, heldout_elbo
from .model.decoders import DECODERS, MLPDecoder
from .model.guides import GUIDES, DiagonalGaussianGuide
from .model.likelihoods import LIKELIHOODS, BernoulliLikelihood
from .model.nets import MLP
from .model.parts import Decoder, Guide, Likelihood, Prior
from .model.priors import PRIORS, StandardNormalPrior
from .model.vae import VAE
from .rng import seeded_rng

__version__ = "0.1.0"

__all__ = [
    "BernoulliLikelihood",
    "CheckpointError",
    "ConfigError",
    "DATASETS",
    "DECODERS",
    "DataConfig",
    "DataFormatError",
    "DatasetUnavailableError",
    "Decoder",
    "DiagonalGaussianGuide",
    "ELBOS",
    "EpochRecord",
    "GUIDES",
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
    "train_view",
    "write_idx",
]
