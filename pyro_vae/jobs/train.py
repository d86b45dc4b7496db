"""The training job: train the VAE of a :class:`~.prepare.Plan` by SVI into its run directory,
with an atomic checkpoint after every epoch, or continue a run from its last completed epoch."""

from __future__ import annotations

import shlex
import sys
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

from ..app.config import DistributedConfig, RunConfig
from ..app.escape import terminal_text
from ..app.interrupts import deferred_interrupts, describing
from ..app.part_checks import part_failure
from ..app.provenance import record as record_provenance
from ..app.run_files import warn_if_link
from ..app.runs import RunDirectory, checkpoint_data_dim, checkpoint_epoch
from ..app.tensorboard import TensorBoardLogger, check_directory
from ..app.vae_build import load_model_state
from ..data.datasets import ImageDataset
from ..data.pixels import eval_view
from ..errors import CheckpointError, ConfigError, TrainingInterrupted, first_line
from ..infer.distributed import ProcessGroup, barrier, process_seed
from ..infer.resume import check_training_state
from ..infer.training import EpochRecord, Trainer, make_optimizer
from ..rng import set_rng_state
from .prepare import Plan, prepare


def train(
    plan: Plan | RunConfig,
    run: RunDirectory | None = None,
    progress: bool = True,
    dataset: ImageDataset | None = None,
    monitor_test: bool = False,
    resume: bool = False,
    tensorboard: bool = False,
    group: ProcessGroup | None = None,
    continue_with: str | None = None,
) -> Trainer:
    """Train the VAE of ``plan`` (:func:`~.prepare.prepare`), checkpointing into its run
    directory after every epoch (``monitor_test``: also record the test ELBO of every epoch,
    for plots only; ``tensorboard``: also log each epoch's metrics to ``RUN/tensorboard/``).

    In a resumed plan, training continues from the run's checkpoint (model, optimizer, RNG
    state and history after its last completed epoch) up to ``cfg.train.epochs``: on CPU the
    result is the one an uninterrupted run with the same seed would have reached. What was
    derived from the model (evaluations, figures, the report) stays until the first new
    epoch's checkpoint replaces the one it describes (:meth:`RunDirectory.save_checkpoint`).

    Holds the run's lock throughout: a second process writing the run is refused. With
    several processes (the plan's group, under torchrun) they train together; process 0 alone
    holds the lock and writes, and all wait for it at the end. Ctrl-C or SIGTERM raise
    :class:`TrainingInterrupted` naming the epoch the checkpoint holds and the command that
    finishes the job (``continue_with``; default ``pyro-vae train --resume RUN``).

    Given a configuration instead of a plan (the older call), ``run`` (resumed with ``resume``)
    and ``dataset`` are prepared here first."""
    if not isinstance(plan, Plan):
        assert run is not None, "train(cfg, run): a configuration needs its run directory"
        plan = prepare(plan, dataset=dataset, resume=run.path if resume else None, open_run=False)
        plan.run = run
    if group is not None:
        plan.group = group
    run = plan.run
    assert run is not None
    with run.writing() if plan.group.is_main else nullcontext():
        trainer = _train(plan, run, progress, monitor_test, tensorboard, continue_with)
    barrier(plan.group, "waiting for process 0 to write the run")
    return trainer


def _train(
    plan: Plan,
    run: RunDirectory,
    progress: bool,
    monitor_test: bool,
    tensorboard: bool = False,
    continue_with: str | None = None,
) -> Trainer:
    cfg, dataset, vae, group = plan.cfg, plan.dataset, plan.vae, plan.group
    # a run stopped before its first epoch ended has no checkpoint yet: it starts over
    state = run.load_checkpoint() if plan.resume and run.checkpoint_path.is_file() else None
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
    cfg = cfg.with_distributed(
        DistributedConfig(
            processes=group.world_size,
            backend=group.backend,
            process_seeds=[
                process_seed(cfg.train.seed, r, group.world_size) for r in range(group.world_size)
            ]
            if group.active
            else [],
        )
    )
    if plan.resume and group.is_main:  # before config.json is rewritten
        _check_metrics_file(run)
    if tensorboard and group.is_main:
        check_directory(run)  # likewise
    if group.is_main:
        run.write_config(cfg)
        if progress:  # where to look while it runs (stderr, beside the progress bars)
            print(f"run directory: {run.path}", file=sys.stderr, flush=True)
    saved = [checkpoint_epoch(state, run.checkpoint_path) if state is not None else 0]
    if group.is_main:
        record_provenance(run, "resume" if plan.resume else "train", str(plan.device), saved[0])

    logger = TensorBoardLogger(run) if tensorboard and group.is_main else None

    def on_epoch_end(trainer: Trainer, record: EpochRecord) -> None:
        with deferred_interrupts():  # the checkpoint and its epoch's metrics, together
            moved = run.save_checkpoint(trainer.state_dict())  # what described it moves
            described, saved[0] = saved[0], record.epoch
            run.write_metrics([asdict(r) for r in trainer.history])
        if moved is not None:
            print(
                f"the evaluations, figures and report of epoch {described} no longer describe "
                f"the model: kept in {terminal_text(str(moved))}",
                file=sys.stderr,
                flush=True,
            )
        if logger is not None:
            logger(record)

    x_test = None
    if monitor_test:
        x_test = eval_view(dataset.test, dataset.levels, cfg.data.pixels, "test")
    set_rng_state(plan.rng)  # where the model's build left it (a resume restores its own)
    trainer = Trainer(
        vae,
        cfg.train,
        dataset,
        pixels=cfg.data.pixels,
        device=plan.device,
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
    """The configuration of the run in ``run_dir`` (as read: :func:`~.prepare.prepare`
    resolves it), with ``epochs`` (when given) as its new target: a run can be continued beyond
    its first target, never cut short."""
    run = RunDirectory.open(run_dir)
    cfg = run.read_config()
    if epochs is not None:
        done = completed_epochs(run)
        if epochs < done:
            raise ConfigError(
                f"{run_dir} has already trained {done} epochs; --epochs {epochs} would cut it short"
            )
        cfg.train.epochs = epochs
    return cfg
