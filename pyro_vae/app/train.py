"""The old home of the training job, kept so that existing imports work: the job is
:mod:`pyro_vae.jobs.train`, the checks before it :mod:`pyro_vae.jobs.prepare`, and the data a
run loads :mod:`.run_data`."""

from ..jobs.prepare import load_data
from ..jobs.train import completed_epochs, resume_config, train
from .run_data import load_run_data

__all__ = ["completed_epochs", "load_data", "load_run_data", "resume_config", "train"]
