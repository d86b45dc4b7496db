"""What the experiment scripts share: one parent parser for the options they all repeat, the
configuration of one of their runs, and "reuse this run's evaluation or compute it".

Each script builds its parser on the parent, naming the shared options it takes with its own
defaults (as torchvision's reference scripts reuse ``get_args_parser(add_help=False)``)::

    parser = argparse.ArgumentParser(
        description=__doc__.split("\\n\\n")[0],
        parents=[get_args_parser(runs_dir="runs/sweep", dataset="digits", epochs=300)],
    )
    parser.add_argument("--lrs", ...)  # then the script's own options

Scripts run as ``python experiments/NAME.py``, so this directory is on ``sys.path`` and
``from common import ...`` finds this module.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pyro_vae import (
    VAE,
    ImageDataset,
    MarginalEstimate,
    RunConfig,
    RunDirectory,
    resolve,
)
from pyro_vae.app.evaluate import evaluate, save_evaluation
from pyro_vae.app.evaluations import find_estimate
from pyro_vae.app.options import add_setting, positive_int
from pyro_vae.errors import PyroVAEError
from pyro_vae.jobs.run import trained_run
from pyro_vae.store.evaluation import ISEvaluation
from pyro_vae.store.metrics import MetricsRecord


def _one_line_errors(kind, value, tb) -> None:
    """An error the user can act on (a run with other settings in the way, a missing data
    set, ...) ends a script with its one-line message and exit status 1, not a traceback."""
    if isinstance(value, PyroVAEError):
        print(f"{Path(sys.argv[0]).name}: error: {value}", file=sys.stderr)
        return
    sys.__excepthook__(kind, value, tb)


sys.excepthook = _one_line_errors

SETTINGS = {"dataset": "data", "epochs": "train", "seed": "train", "device": "train"}
"""The shared options that are settings of a run, by destination and section: their option is
the one ``pyro-vae run`` has, generated from the setting's declaration (:mod:`pyro_vae.config`),
with the script's default."""

SCRIPT_OPTIONS: dict[str, tuple[str, dict[str, Any], str]] = {
    "num_samples": (
        "--num-samples",
        dict(type=positive_int, metavar="K", help="importance samples per image for log p(x)"),
        "%(default)s",
    ),
    "latents": (
        "--latents",
        dict(type=positive_int, nargs="+", metavar="K", help="latent sizes, one model each"),
        "%(default)s",
    ),
    "threads": ("--threads", dict(type=positive_int, help="torch intra-op threads"), "torch's"),
    "runs_dir": (
        "--runs-dir",
        dict(metavar="DIR", help="where the run directories and results go"),
        "%(default)s",
    ),
    "quiet": ("--quiet", dict(action="store_true", help="no progress bars"), ""),
}
"""The shared options of the scripts themselves (not settings of a run), by destination: the
flag, its argparse settings and what the help says of a default of ``None``."""

ORDER = ("dataset", "epochs", "num_samples", "latents", "seed", "threads", "device", "runs_dir")
"""The order in which a parser lists the shared options (``--quiet`` last)."""

PER_SCRIPT = ("dataset", "epochs", "num_samples", "latents", "seed", "threads")
"""The shared options a script takes only by naming them with their default."""


def benchmark_settings(args: argparse.Namespace) -> None:
    """What a benchmark's shared options ask of torch: ``--threads`` intra-op threads (if
    given); and the JIT's deprecation warnings silenced, so they do not break up the timings."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    if args.threads:
        torch.set_num_threads(args.threads)


def get_args_parser(
    add_help: bool = False,
    *,
    runs_dir: str | None = None,
    device: str = "auto",
    default_help: Mapping[str, str] | None = None,
    **defaults: Any,
) -> argparse.ArgumentParser:
    """A parser with the shared options, for use as a parent parser: ``--device`` (default
    ``device``); with ``runs_dir`` (a script that trains runs) ``--runs-dir`` with that default
    and ``--quiet``; and the options named in ``defaults`` by destination (``dataset``,
    ``epochs``, ``num_samples``, ``latents``, ``seed``), each with the given default.
    ``default_help`` words what a default means where its value alone does not say
    (``{"dataset": "mnist if found, else fashion-mnist"}``)."""
    unknown = sorted(set(defaults) - set(PER_SCRIPT))
    if unknown:
        raise TypeError(f"no shared option {', '.join(unknown)}; one of {', '.join(PER_SCRIPT)}")
    chosen = {**defaults, "device": device}
    if runs_dir is not None:
        chosen.update(runs_dir=runs_dir, quiet=False)
    default_help = dict(default_help or {})
    parser = argparse.ArgumentParser(add_help=add_help)
    for dest in (*ORDER, "quiet"):
        if dest not in chosen:
            continue
        default, words = chosen[dest], default_help.get(dest)
        if dest in SETTINGS:
            add_setting(parser, SETTINGS[dest], dest, default=default, default_words=words)
            continue
        flag, settings, none_words = SCRIPT_OPTIONS[dest]
        settings = dict(settings)
        if settings.get("action") != "store_true":
            words = words or (none_words if default is None else "%(default)s")
            settings["help"] += f" (default: {words})"
        parser.add_argument(flag, dest=dest, default=default, **settings)
    return parser


PUBLISHED_TRAINING: dict[str, Any] = {"lr": 1e-3, "lr_schedule": "constant", "jit": False}
"""The training defaults of pyro-vae 0.2, with which the tables and figures these scripts
publish in the README were made (with the standard-normal prior and dynamic binarization for
the Bernoulli likelihood). ``run_config`` keeps them, so the README's numbers regenerate;
today's defaults (a mixture-of-Gaussians prior, grey levels, learning rate 3e-3, the
JIT-compiled ELBO) are measured against them by ``experiments/recipes.py``, which passes
``published=False``."""


def run_config(
    args: argparse.Namespace,
    dataset: str | None = None,
    *,
    model: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    train: Mapping[str, Any] | None = None,
    published: bool = True,
) -> RunConfig:
    """The configuration of one of a script's runs: the data set (``args.dataset`` unless given),
    the training options of the command line (``--epochs``, ``--seed``, ``--device``, those the
    script takes), then the script's settings for this run, section by section; what none of
    them sets is pyro-vae 0.2's default (:data:`PUBLISHED_TRAINING`, the standard-normal
    prior, dynamic binarization) unless ``published=False`` (today's defaults). Returned
    resolved: validated, with the epochs, the pixel scheme and the JIT choice filled in."""
    cfg = RunConfig()
    cfg.data = dataclasses.replace(cfg.data, dataset=dataset or args.dataset, **(data or {}))
    given = {k: getattr(args, k) for k in ("epochs", "seed", "device") if hasattr(args, k)}
    base = dict(PUBLISHED_TRAINING) if published else {}
    cfg.train = dataclasses.replace(cfg.train, **{**base, **given, **(train or {})})
    prior = {"prior": "normal"} if published else {}
    cfg.model = dataclasses.replace(cfg.model, **{**prior, **(model or {})})
    if published and cfg.data.pixels is None and cfg.model.likelihood == "bernoulli":
        cfg.data.pixels = "dynamic"
    return resolve(cfg)


def evaluation(
    run: RunDirectory,
    vae: VAE,
    cfg: RunConfig,
    dataset: ImageDataset,
    num_samples: int,
    split: str = "test",
    seed: int = 0,
    progress: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> tuple[ISEvaluation, MarginalEstimate]:
    """The run's importance-sampled log p(x) of ``split`` with ``num_samples`` samples per image:
    read back from the run's ``is-K<K>`` entry and its per-image points when they hold exactly
    this (data set, pixels, split, K and seed), otherwise computed and saved there. ``extra``
    entries are kept in the record's ``extra`` (and saved with a new one).

    A stale evaluation cannot be read back: ``trained_run`` reuses a run only with the same
    configuration (it refuses one with other settings, never removes it), and continuing a run
    clears what was computed from its earlier model."""
    wanted = {"dataset": dataset.name, "pixels": cfg.data.pixels, "seed": seed}
    found = find_estimate(run, f"is-K{num_samples}", split, **wanted)
    if found is not None:
        summary, points = found
        estimate = points.marginal_estimate()
        if isinstance(summary, ISEvaluation) and estimate is not None:
            return dataclasses.replace(summary, extra={**summary.extra, **(extra or {})}), estimate
    device = next(vae.parameters()).device
    record, estimate = evaluate(
        vae, cfg, dataset, device, num_samples, split=split, seed=seed, progress=progress
    )
    assert isinstance(record, ISEvaluation) and isinstance(estimate, MarginalEstimate)
    record = dataclasses.replace(record, extra={**record.extra, **(extra or {})})
    save_evaluation(run, record, estimate)
    return record, estimate


@dataclass(frozen=True)
class Scored:
    """One row of a script's table: its name, its run's test evaluation, the run's parameter
    count and training seconds."""

    name: str
    evaluation: ISEvaluation
    parameters: int
    train_seconds: float | None


def slug(name: str) -> str:
    """A run directory name for a table row's name (lower case, dashes, at most 60 chars)."""
    keep = [c if c.isalnum() else "-" for c in name.lower()]
    return "-".join(filter(None, "".join(keep).split("-")))[:60]


def evaluated_run(
    cfg: RunConfig,
    root: Path,
    name: str,
    dataset: ImageDataset,
    num_samples: int,
    quiet: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> tuple[Scored, VAE, list[MetricsRecord]]:
    """The run ``root/slug(name)`` for ``cfg`` trained (or reused, or resumed) and its test
    log p(x) with ``num_samples`` importance samples evaluated (or read back); the evaluation
    saved with it also holds the row's name, the parameter count, the training seconds and
    ``extra``. Returns the row, the VAE and the per-epoch metrics."""
    run, vae, metrics = trained_run(cfg, root, slug(name), dataset, progress=not quiet)
    parameters = sum(p.numel() for p in vae.parameters())
    train_seconds = metrics[-1].wall_seconds
    extra = {"row": name, "parameters": parameters, "train_seconds": train_seconds, **(extra or {})}
    ev, _ = evaluation(run, vae, cfg, dataset, num_samples, progress=not quiet, extra=extra)
    return Scored(name, ev, parameters, train_seconds), vae, metrics


def paired(a: Any, b: Any) -> tuple[float, float]:
    """Mean and standard error of the per-image difference ``a - b`` (tensors over the same
    images): far more precise than either mean, since what the images share cancels."""
    diff = (a - b).double()
    return diff.mean().item(), diff.std().item() / math.sqrt(len(diff))
