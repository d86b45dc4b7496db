"""The training job: build the configured VAE, train it by SVI into a run directory with an
atomic checkpoint after every epoch, or continue a run from its last completed epoch."""

from __future__ import annotations

import shlex
import sys
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import pyro
import torch

from ..data.datasets import ImageDataset, load_dataset
from ..data.pixels import eval_view
from ..errors import CheckpointError, ConfigError, TrainingInterrupted, first_line
from ..infer.distributed import SINGLE, ProcessGroup, barrier, device_for, process_seed
from ..infer.memory import check_memory, estimate_memory
from ..infer.resume import check_training_state
from ..infer.training import (
    EpochRecord,
    Trainer,
    check_batch_size,
    make_optimizer,
    resolve_device,
)
from ..rng import set_rng_seed
from .config import DistributedConfig, RunConfig
from .interrupts import describing
from .part_checks import part_failure
from .registry import NotOnMeta, build_vae, load_model_state, resolve
from .run_files import warn_if_link
from .runs import RunDirectory, checkpoint_data_dim, checkpoint_epoch
from .tensorboard import TensorBoardLogger, check_directory


def load_data(cfg: RunConfig) -> ImageDataset:
    """The data set of a new run: its configuration is the user's (the command line)."""
    return load_dataset(cfg.data.dataset, cfg.data.data_dir, download=cfg.data.download)


def load_run_data(
    cfg: RunConfig, data_dir: str | Path | None = None, download: bool | None = None
) -> ImageDataset:
    """The data set of an existing run (evaluate, figures, report, resume), whose
    ``config.json`` may be anyone's: it chooses the data set, but not where anything is
    written. A download goes to ``data_dir`` (the user's ``--data-dir``) or the user's cache
    (``$PYRO_VAE_DATA``, else ``~/.cache/pyro-vae``), never into the configuration's
    ``data_dir``, which is only read from, and only when it is an existing directory.
    ``download``: the user's permission (``None``: the run's own setting, for a resume,
    which takes no data options)."""
    allowed = cfg.data.download if download is None else download
    named = [cfg.data.data_dir] if cfg.data.data_dir else []
    return load_dataset(cfg.data.dataset, data_dir, download=allowed, search_dirs=named)


def check_fits_in_memory(
    cfg: RunConfig,
    dataset: ImageDataset,
    device: torch.device,
    num_samples: int | None = None,
    untrusted: Path | None = None,
) -> None:
    """Refuse a resolved configuration whose run would not fit in the memory free on
    ``device`` (:func:`~pyro_vae.infer.memory.estimate_memory`, counted on a model built on the
    ``meta`` device), before a run directory exists; ``num_samples``: the run also estimates
    log p(x) with that many importance samples per test image."""
    try:
        with torch.device("meta"):
            vae = build_vae(cfg.model, dataset.data_dim, cfg.data.pixels, untrusted=untrusted)
    except NotOnMeta:  # a part that reads values while built: resolve() built it for real
        return
    t = cfg.train
    estimate = estimate_memory(
        vae,
        dataset.data_dim,
        cfg.model.latent_dim,
        t.batch_size,
        particles=t.particles,
        eval_particles=t.eval_particles,
        num_train=len(dataset.train),
        num_val=len(dataset.val),
        num_samples=num_samples,
        num_test=len(dataset.test),
    )
    check_memory(estimate, device, what="this run")


def train(
    cfg: RunConfig,
    run: RunDirectory,
    progress: bool = True,
    dataset: ImageDataset | None = None,
    monitor_test: bool = False,
    resume: bool = False,
    tensorboard: bool = False,
    group: ProcessGroup = SINGLE,
    continue_with: str | None = None,
) -> Trainer:
    """Train the VAE of ``cfg``, checkpointing into ``run`` after every epoch
    (``monitor_test``: also record the test ELBO of every epoch, for plots only;
    ``tensorboard``: also log each epoch's metrics to ``RUN/tensorboard/``).

    With ``resume``, continue from the run's checkpoint (model, optimizer, RNG state and
    history after its last completed epoch) up to ``cfg.train.epochs``: on CPU the result is the
    one an uninterrupted run with the same seed would have reached. What was derived from the
    model (evaluations, figures, the report) stays until the first new epoch's checkpoint
    replaces the one it describes (:meth:`RunDirectory.save_checkpoint`).

    Holds the run's lock throughout: a second process writing the run is refused. With
    several processes (``group``, under torchrun) they train together; process 0 alone holds
    the lock and writes, and all wait for it at the end. Ctrl-C or SIGTERM raise
    :class:`TrainingInterrupted` naming the epoch the checkpoint holds and the command that
    finishes the job (``continue_with``; default ``pyro-vae train --resume RUN``).
    """
    with run.writing() if group.is_main else nullcontext():
        trainer = _train(
            cfg, run, progress, dataset, monitor_test, resume, tensorboard, group, continue_with
        )
    barrier(group, "waiting for process 0 to write the run")
    return trainer


def _train(
    cfg: RunConfig,
    run: RunDirectory,
    progress: bool,
    dataset: ImageDataset | None,
    monitor_test: bool,
    resume: bool,
    tensorboard: bool = False,
    group: ProcessGroup = SINGLE,
    continue_with: str | None = None,
) -> Trainer:
    dataset = dataset if dataset is not None else load_data(cfg)
    untrusted = run.path if resume else None
    cfg = resolve(cfg, dataset.data_dim, untrusted=untrusted)
    check_batch_size(cfg.train.batch_size, dataset)
    pyro.clear_param_store()
    set_rng_seed(cfg.train.seed)  # pyro's refuses numpy seeds >= 2**32
    vae = build_vae(cfg.model, dataset.data_dim, cfg.data.pixels, untrusted=untrusted)
    # a run stopped before its first epoch ended has no checkpoint yet: it starts over
    state = run.load_checkpoint() if resume and run.checkpoint_path.is_file() else None
    if state is not None:
        data_dim = checkpoint_data_dim(state, run.checkpoint_path)
        if data_dim != dataset.data_dim:
            raise CheckpointError(
                f"{run.checkpoint_path} was trained on data of dimension {data_dim}, "
                f"not {dataset.data_dim}"
            )
        load_model_state(vae, state.get("model"), run.checkpoint_path)
        # all of it, before anything in the run is rewritten (config.json just below)
        optimizer = make_optimizer(vae.parameters(), cfg.train.lr)
        check_training_state(state, optimizer, EpochRecord, run.checkpoint_path)
        if checkpoint_epoch(state, run.checkpoint_path) > cfg.train.epochs:
            raise ConfigError(
                f"{run.path} has already trained {state['epoch']} epochs, more than "
                f"{cfg.train.epochs}"
            )
    cfg.distributed = DistributedConfig(
        processes=group.world_size,
        backend=group.backend,
        process_seeds=[
            process_seed(cfg.train.seed, r, group.world_size) for r in range(group.world_size)
        ]
        if group.active
        else [],
    )
    if resume and group.is_main:  # before config.json is rewritten
        _check_metrics_file(run)
    if tensorboard and group.is_main:
        check_directory(run)  # likewise
    if group.is_main:
        run.write_config(cfg)
        if progress:  # where to look while it runs (stderr, beside the progress bars)
            print(f"run directory: {run.path}", file=sys.stderr, flush=True)
    saved = [checkpoint_epoch(state, run.checkpoint_path) if state is not None else 0]

    logger = TensorBoardLogger(run) if tensorboard and group.is_main else None

    def on_epoch_end(trainer: Trainer, record: EpochRecord) -> None:
        run.save_checkpoint(trainer.state_dict())  # then removes what described the old one
        saved[0] = record.epoch
        run.write_metrics([asdict(r) for r in trainer.history])
        if logger is not None:
            logger(record)

    x_test = None
    if monitor_test:
        x_test = eval_view(dataset.test, dataset.levels, cfg.data.pixels, "test")
    trainer = Trainer(
        vae,
        cfg.train,
        dataset,
        pixels=cfg.data.pixels,
        device=resolve_device(device_for(cfg.train.device, group)),
        progress=progress and group.is_main,
        on_epoch_end=on_epoch_end if group.is_main else None,
        x_test=x_test,
        group=group,
    )
    if state is not None:
        try:
            trainer.load_state_dict(state, run.checkpoint_path)
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(
                f"{run.checkpoint_path} does not match {run.config_path} ({first_line(exc)})"
            ) from exc
        # the metrics file may lag the checkpoint by the epoch a crash interrupted
        if group.is_main:
            run.write_metrics([asdict(r) for r in trainer.history])

    def interrupted() -> str:
        # the checkpoint's epoch, not the trainer's: Ctrl-C during an epoch's validation pass
        # comes after the trainer counted the epoch and before its checkpoint was written
        return _interrupted_message(run, saved[0], continue_with)

    try:
        with describing(interrupted):  # also what a forced stop says (a part that hangs)
            trainer.fit()
    except KeyboardInterrupt:
        raise TrainingInterrupted(interrupted()) from None
    except Exception as exc:  # a user's part that raises: named, the last checkpoint kept
        kept = saved[0]
        holds = f"{run.path} holds the model after epoch {kept}" if kept else "nothing was saved"
        command = continue_with or f"pyro-vae train --resume {shlex.quote(str(run.path))}"
        failure = part_failure(
            vae, exc, f"during epoch {kept + 1}", f"{holds}; fix it, then continue with: {command}"
        )
        if failure is None:
            raise
        raise failure from exc
    finally:
        if logger is not None:
            logger.close()
    return trainer


def _check_metrics_file(run: RunDirectory) -> None:
    """Before a resume rewrites anything: ``metrics.jsonl``, which it rewrites from the
    checkpoint's history, may be a link (replaced, never followed: said on stderr), but not a
    directory or FIFO, which could not be replaced once ``config.json`` was."""
    consequence = "replaced by the metrics of the run's checkpoint"
    if not warn_if_link(run.metrics_path, consequence):
        run.has_file(run.metrics_path.name)  # refuses what is not a regular file


def _interrupted_message(run: RunDirectory, kept: int, continue_with: str | None) -> str:
    """What an interrupted training says: the epoch the checkpoint holds, how to continue."""
    holds = (
        f"{run.path} holds the model after epoch {kept}"
        if kept
        else f"no epoch had completed, so {run.path} holds no checkpoint yet"
    )
    command = continue_with or f"pyro-vae train --resume {shlex.quote(str(run.path))}"
    return f"interrupted during epoch {kept + 1}; {holds}. Continue with: {command}"


def completed_epochs(run: RunDirectory) -> int:
    """The epochs the run's checkpoint holds (0 before its first epoch ended)."""
    if not run.checkpoint_path.is_file():
        return 0
    state = run.load_checkpoint()
    checkpoint_data_dim(state, run.checkpoint_path)  # a corrupt checkpoint is no complete run
    return checkpoint_epoch(state, run.checkpoint_path)


def resume_config(run_dir: str | Path, epochs: int | None = None) -> RunConfig:
    """The configuration of the run in ``run_dir``, with ``epochs`` (when given) as its new
    target: a run can be continued beyond its first target, never cut short."""
    run = RunDirectory.open(run_dir)
    cfg = run.resolved_config()
    if epochs is not None:
        done = completed_epochs(run)
        if epochs < done:
            raise ConfigError(
                f"{run_dir} has already trained {done} epochs; --epochs {epochs} would cut it short"
            )
        cfg.train.epochs = epochs
    return cfg
