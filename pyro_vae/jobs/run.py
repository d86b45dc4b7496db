"""The main job (``pyro-vae run``): train, evaluate, compare with finite mixtures, train the
autoencoder beside, draw every figure and write the report; and ``trained_run``, the
"reuse this run or train it" helper of the experiment scripts."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..app.baseline import DEFAULT_COMPONENTS, compare_with_mixtures
from ..app.config import ResolvedConfig, RunConfig
from ..app.evaluate import evaluate, save_evaluation
from ..app.figures import write_figures
from ..app.interpolation import train_run_autoencoder
from ..app.report import write_report
from ..app.runs import RunDirectory, checkpoint_epoch, load_vae
from ..data.datasets import ImageDataset
from ..errors import ConfigError, TrainingInterrupted
from ..infer.training import EpochRecord
from ..model.vae import VAE
from ..store.baseline import Baseline
from ..store.evaluation import Estimate
from .prepare import prepare
from .train import train


@dataclass
class RunResult:
    run: RunDirectory
    cfg: RunConfig
    history: list[EpochRecord]
    evaluation: Estimate | None = None
    figures: list[Path] = field(default_factory=list)
    baseline: Baseline | None = None


def run_main_job(
    cfg: RunConfig,
    runs_dir: str | Path = "runs",
    name: str | None = None,
    progress: bool = True,
    num_samples: int = 1000,
    baseline_components: Sequence[int] = DEFAULT_COMPONENTS,
    resume: str | Path | None = None,
    tensorboard: bool = False,
    on_checked: Callable[[ResolvedConfig], None] | None = None,
    autoencoder_epochs: int | None = None,
) -> RunResult:
    """Train, evaluate (log p(x) with ``num_samples`` importance samples per test image),
    compare with finite mixtures of ``baseline_components`` components, and plot: everything
    ``pyro-vae run`` does. With ``resume`` (a run directory), ``cfg`` is that run's and
    training continues from its checkpoint. ``tensorboard``: also log each epoch's metrics to
    ``RUN/tensorboard/`` (refused before the run exists when the package is missing).
    ``on_checked``: called with the configuration once every pre-flight check has passed, just
    before a new run directory is created. ``autoencoder_epochs``: the plain autoencoder of the
    interpolation figure trains that many epochs (default: the VAE's; 0: no autoencoder)."""
    plan = prepare(
        cfg,
        runs_dir,
        name,
        resume=resume,
        num_samples=num_samples,
        baseline_components=baseline_components,
        tensorboard=tensorboard,
        on_checked=on_checked,
    )
    run, cfg, dataset, device = plan.run, plan.cfg, plan.dataset, plan.device
    assert run is not None
    finish = _finish_command(run, num_samples, baseline_components, autoencoder_epochs)
    with run.writing():  # one lock from the first epoch to the report
        trainer = train(plan, progress=progress, tensorboard=tensorboard, continue_with=finish)
        try:
            vae = trainer.vae.eval()
            evaluation, estimate = evaluate(
                vae, cfg, dataset, device, num_samples=num_samples, progress=progress
            )
            save_evaluation(run, evaluation, estimate)
            baseline = compare_with_mixtures(
                run, vae, cfg, dataset, estimate, baseline_components, progress=progress
            )
            if autoencoder_epochs != 0:
                train_run_autoencoder(run, cfg, dataset, device, progress, autoencoder_epochs)
            figures = write_figures(run, vae, cfg, dataset, device, progress=progress)
            write_report(run.path, loaded=(run, cfg, vae))
        except KeyboardInterrupt:
            raise TrainingInterrupted(
                f"interrupted after training; {run.path} holds the model after epoch "
                f"{trainer.epoch}, but not yet all of its evaluation, baselines, figures and "
                f"report. Finish with: {finish}"
            ) from None
    return RunResult(run, cfg, trainer.history, evaluation, figures, baseline)


def _finish_command(
    run: RunDirectory,
    num_samples: int,
    components: Sequence[int],
    autoencoder_epochs: int | None = None,
) -> str:
    """The command that finishes an interrupted ``pyro-vae run``: training, then everything
    after it (the options that config.json does not record are repeated)."""
    words = ["pyro-vae", "run", "--resume", shlex.quote(str(run.path))]
    if num_samples != 1000:
        words += ["--num-samples", str(num_samples)]
    if list(components) != list(DEFAULT_COMPONENTS):
        words += ["--baseline-components", *map(str, components)]
    if autoencoder_epochs is not None:
        words += ["--autoencoder-epochs", str(autoencoder_epochs)]
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
    finished run with the same configuration, continued when it holds an unfinished one,
    trained afresh when there is nothing there (for experiment scripts, which can then be
    stopped and re-run, and redraw their figures without retraining). Returns the run
    directory, the VAE (in eval mode) and the per-epoch metrics.

    Nothing already there is ever removed (an empty directory aside): a run with other
    settings, a directory that holds no run, a file or a link at that name are refused with
    :class:`ConfigError` naming it and what differs."""
    plan = prepare(cfg, dataset=dataset, open_run=False)  # resolved, checked, built once
    cfg = plan.cfg
    device = torch.device(device) if device is not None else plan.device
    path = Path(runs_dir) / name
    if _empty_directory(path):
        os.rmdir(path)  # nothing in it to lose (a script stopped before its first write)
    elif os.path.lexists(path):
        run = RunDirectory(path)
        _check_a_run(run)  # before the lock: nothing is created in what is not a run
        with run.writing():  # refused while another process writes it
            _check_same_run(run, cfg)
            if run.checkpoint_path.is_file() and (
                checkpoint_epoch(run.load_checkpoint(), run.checkpoint_path) >= cfg.train.epochs
            ):
                _, _, vae = load_vae(path, device)
                return run, vae, run.read_metrics()
            # the same run, unfinished (or stopped before its first epoch ended): continue it
            plan.run, plan.resume = run, True
            trainer = train(plan, progress=progress, monitor_test=monitor_test)
            return run, trainer.vae.eval(), run.read_metrics()
    plan.run = RunDirectory.create(runs_dir, name)
    trainer = train(plan, progress=progress, monitor_test=monitor_test)
    return plan.run, trainer.vae.eval(), plan.run.read_metrics()


def _empty_directory(path: Path) -> bool:
    """Whether ``path`` is a directory (not a link to one) with nothing in it."""
    if path.is_symlink() or not path.is_dir():
        return False
    with os.scandir(path) as entries:
        return next(entries, None) is None


_KEEP = (
    "pyro-vae never deletes what is there: move it away (or delete it yourself), or give "
    "another --runs-dir"
)


def _check_a_run(run: RunDirectory) -> None:
    """Refuse (:class:`ConfigError`) a path that is not a run directory: a file, a link, a
    directory without ``config.json``."""
    path = run.path
    if path.is_symlink() or not path.is_dir():
        what = "a symbolic link" if path.is_symlink() else "a file"
        raise ConfigError(f"{path} is {what}, not a run directory; {_KEEP}.")
    if not run.config_path.is_file():
        raise ConfigError(f"{path} is not empty and holds no run (no config.json); {_KEEP}.")


def _check_same_run(run: RunDirectory, cfg: RunConfig) -> None:
    """Refuse (:class:`ConfigError`) to reuse ``run`` for ``cfg`` unless it has that very
    configuration, naming what differs; nothing is removed either way."""
    differ = _differences(run.resolved_config(), cfg)
    if differ:
        raise ConfigError(f"{run.path} holds a run with other settings ({differ}); {_KEEP}.")


def _differences(theirs: RunConfig, ours: RunConfig, limit: int = 3) -> str:
    """The settings that differ, ``section.option: there X, here Y`` (the first few)."""
    # as JSON holds them: a tuple here and the list config.json reads back are the same
    a, b = (json.loads(json.dumps(c.to_dict())) for c in (theirs, ours))
    found = [
        f"{section}.{key}: there {a[section].get(key)!r}, here {value!r}"
        for section in ("data", "model", "train", "distributed")
        for key, value in b[section].items()
        if a[section].get(key) != value
    ]
    more = f" and {len(found) - limit} more" if len(found) > limit else ""
    return "; ".join(found[:limit]) + more if found else ""
