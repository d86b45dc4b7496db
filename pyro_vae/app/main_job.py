"""The main job (``pyro-vae run``): train, evaluate, compare with finite mixtures, train the
autoencoder beside, draw every figure and write the report; and ``trained_run``, the
"reuse this run or train it" helper of the experiment scripts."""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..data.datasets import ImageDataset
from ..errors import TrainingInterrupted
from ..infer.training import EpochRecord, check_batch_size, resolve_device
from ..model.vae import VAE
from .baseline import DEFAULT_COMPONENTS, compare_with_mixtures
from .config import RunConfig
from .evaluate import evaluate, save_evaluation
from .figures import write_figures
from .interpolation import train_run_autoencoder
from .registry import resolve
from .report import write_report
from .runs import RunDirectory, checkpoint_epoch, load_vae
from .tensorboard import summary_writer_class
from .train import check_fits_in_memory, load_data, load_run_data, train


@dataclass
class RunResult:
    run: RunDirectory
    cfg: RunConfig
    history: list[EpochRecord]
    evaluation: dict[str, Any] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    baseline: dict[str, Any] = field(default_factory=dict)


def run_main_job(
    cfg: RunConfig,
    runs_dir: str | Path = "runs",
    name: str | None = None,
    progress: bool = True,
    num_samples: int = 1000,
    baseline_components: Sequence[int] = DEFAULT_COMPONENTS,
    resume: str | Path | None = None,
    tensorboard: bool = False,
) -> RunResult:
    """Train, evaluate (log p(x) with ``num_samples`` importance samples per test image),
    compare with finite mixtures of ``baseline_components`` components, and plot: everything
    ``pyro-vae run`` does. With ``resume`` (a run directory), ``cfg`` is that run's and
    training continues from its checkpoint. ``tensorboard``: also log each epoch's metrics to
    ``RUN/tensorboard/`` (refused before the run exists when the package is missing)."""
    dataset = load_run_data(cfg) if resume else load_data(cfg)  # a run's: no write outside
    untrusted = Path(resume) if resume else None
    cfg = resolve(cfg, dataset.data_dim, untrusted=untrusted)  # before a run directory exists
    device = resolve_device(cfg.train.device)
    check_batch_size(cfg.train.batch_size, dataset)
    if tensorboard:
        summary_writer_class()  # a missing package: refused before a run directory exists
    check_fits_in_memory(cfg, dataset, device, num_samples, untrusted)
    run = RunDirectory.open(resume) if resume else RunDirectory.create(runs_dir, name)
    finish = _finish_command(run, num_samples, baseline_components)
    with run.writing():  # one lock from the first epoch to the report
        trainer = train(
            cfg,
            run,
            progress=progress,
            dataset=dataset,
            resume=resume is not None,
            tensorboard=tensorboard,
            continue_with=finish,
        )
        try:
            vae = trainer.vae.eval()
            evaluation, estimate = evaluate(
                vae, cfg, dataset, device, num_samples=num_samples, progress=progress
            )
            save_evaluation(run, evaluation, estimate)
            baseline = compare_with_mixtures(
                run, vae, cfg, dataset, estimate, baseline_components, progress=progress
            )
            train_run_autoencoder(run, cfg, dataset, device, progress)
            figures = write_figures(run, vae, cfg, dataset, device, progress=progress)
            write_report(run.path)
        except KeyboardInterrupt:
            raise TrainingInterrupted(
                f"interrupted after training; {run.path} holds the model after epoch "
                f"{trainer.epoch}, but not yet all of its evaluation, baselines, figures and "
                f"report. Finish with: {finish}"
            ) from None
    return RunResult(run, cfg, trainer.history, evaluation, figures, baseline)


def _finish_command(run: RunDirectory, num_samples: int, components: Sequence[int]) -> str:
    """The command that finishes an interrupted ``pyro-vae run``: training, then everything
    after it (the options that config.json does not record are repeated)."""
    words = ["pyro-vae", "run", "--resume", shlex.quote(str(run.path))]
    if num_samples != 1000:
        words += ["--num-samples", str(num_samples)]
    if list(components) != list(DEFAULT_COMPONENTS):
        words += ["--baseline-components", *map(str, components)]
    return " ".join(words)


def trained_run(
    cfg: RunConfig,
    runs_dir: str | Path,
    name: str,
    dataset: ImageDataset | None = None,
    progress: bool = True,
    device: str | torch.device | None = None,
    monitor_test: bool = False,
) -> tuple[RunDirectory, VAE, list[dict[str, Any]]]:
    """The run ``runs_dir/name`` for ``cfg``: reused when that directory already holds a
    finished run with the same configuration, trained afresh otherwise (for experiment scripts,
    which can then be stopped and re-run, and redraw their figures without retraining).
    Returns the run directory, the VAE (in eval mode) and the per-epoch metrics."""
    cfg = resolve(cfg)
    device = torch.device(device) if device is not None else resolve_device(cfg.train.device)
    path = Path(runs_dir) / name
    if path.is_dir():
        run = RunDirectory(path)
        with run.writing():  # refused while another process writes it
            if (path / "config.json").is_file() and (path / "checkpoint.pt").is_file():
                if run.resolved_config() == cfg:
                    if (
                        checkpoint_epoch(run.load_checkpoint(), run.checkpoint_path)
                        >= cfg.train.epochs
                    ):
                        _, _, vae = load_vae(path, device)
                        return run, vae, run.read_metrics()
                    # the same run, unfinished: continue it where it stopped
                    trainer = train(
                        cfg,
                        run,
                        progress=progress,
                        dataset=dataset,
                        monitor_test=monitor_test,
                        resume=True,
                    )
                    return run, trainer.vae.eval(), run.read_metrics()
            _discard(path)  # another configuration, or no run
    elif os.path.lexists(path):
        os.unlink(path)  # a file or a dangling link in the way (removed, never followed)
    run = RunDirectory.create(runs_dir, name)
    trainer = train(cfg, run, progress=progress, dataset=dataset, monitor_test=monitor_test)
    return run, trainer.vae.eval(), run.read_metrics()


def _discard(path: Path) -> None:
    """Remove a run directory; a link to one is removed itself, its target left alone."""
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path)
