"""pyro-vae: variational autoencoders as Pyro probabilistic programs.

The public API. A VAE is a Pyro ``model(x)`` and ``guide(x)`` composed from swappable parts
(prior, guide/encoder, decoder, likelihood); training is SVI; everything downstream talks to the
program through Pyro's interfaces.
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import DataConfig, ModelConfig, RunConfig, TrainConfig
from .datasets import DATASETS, ImageDataset, Split, load_dataset
from .errors import (
    CheckpointError,
    ConfigError,
    DataFormatError,
    DatasetUnavailableError,
    PyroVAEError,
    TrainingDivergedError,
    TrainingInterrupted,
)
from .guides import GUIDES, DiagonalGaussianGuide
from .idx import read_idx, write_idx
from .likelihoods import LIKELIHOODS, BernoulliLikelihood
from .marginal import MarginalEstimate, log_importance_weights, log_marginal, pareto_khat
from .nets import MLP
from .pipeline import evaluate_run, run_main_job
from .pixels import PIXEL_SCHEMES, binarize, dequantize, eval_view, train_view
from .priors import PRIORS, StandardNormalPrior
from .rng import seeded_rng
from .runs import RunDirectory, load_vae
from .training import ELBOS, EpochRecord, Trainer, heldout_elbo
from .vae import VAE, build_vae

__version__ = "0.1.0"

__all__ = [
    "BernoulliLikelihood",
    "CheckpointError",
    "ConfigError",
    "DATASETS",
    "DataConfig",
    "DataFormatError",
    "DatasetUnavailableError",
    "DiagonalGaussianGuide",
    "ELBOS",
    "EpochRecord",
    "GUIDES",
    "ImageDataset",
    "LIKELIHOODS",
    "MLP",
    "MarginalEstimate",
    "ModelConfig",
    "PIXEL_SCHEMES",
    "PRIORS",
    "PyroVAEError",
    "RunConfig",
    "RunDirectory",
    "Split",
    "StandardNormalPrior",
    "TrainConfig",
    "Trainer",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "VAE",
    "binarize",
    "build_vae",
    "dequantize",
    "eval_view",
    "evaluate_run",
    "heldout_elbo",
    "load_checkpoint",
    "load_dataset",
    "load_vae",
    "log_importance_weights",
    "log_marginal",
    "pareto_khat",
    "read_idx",
    "run_main_job",
    "save_checkpoint",
    "seeded_rng",
    "train_view",
    "write_idx",
]
