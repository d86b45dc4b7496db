"""The old home of ``pyro-vae run``'s job and ``trained_run``, kept so that existing imports
work: they are in :mod:`pyro_vae.jobs.run`."""

from ..jobs.run import RunResult, run_main_job, trained_run

__all__ = ["RunResult", "run_main_job", "trained_run"]
