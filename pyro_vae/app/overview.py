"""Looking across runs: ``pyro-vae list`` (one line per run) and ``pyro-vae compare`` (runs
evaluated on the same test tensor, side by side, with paired differences).

Everything a run directory holds is read as untrusted input: a run that cannot be read is
listed with the reason, and ``compare`` refuses with a message, never a traceback. What a run
contributes to a line (its name, its configuration's strings) is shown with control
characters as escapes (:func:`.escape.terminal_text`).

The paired difference of runs A and B over the same N test images is
d = (1/N) sum_n [log p_A(x_n) - log p_B(x_n)], with standard error sd(d_n) / sqrt(N): the
images' own spread cancels, so two models can be told apart far more finely than their
separate standard errors suggest.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CheckpointError, ConfigError, PyroVAEError, first_line
from .escape import terminal_text
from .evaluations import Evaluations, describe_key, load_points, read_evaluations
from .preflight import run_labels
from .run_data import example_word
from .run_lock import LOCK_FILE
from .runs import RunDirectory

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def run_status(run: RunDirectory, epochs_done: int | None, epochs_wanted: int) -> str:
    """``running`` while another process holds the run's lock, else ``finished`` when the
    checkpoint holds every epoch asked for, ``interrupted`` when it holds fewer, ``empty``
    without any epoch."""
    lock = run.file(LOCK_FILE)
    if fcntl is not None and lock.is_file() and not lock.is_symlink():
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(lock, flags)
        except OSError:
            fd = None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return "running"
            finally:
                os.close(fd)
    if not epochs_done:
        return "empty"
    return "finished" if epochs_done >= epochs_wanted else "interrupted"


@dataclass
class RunLine:
    """What ``pyro-vae list`` says about one run."""

    name: str
    dataset: str = ""
    parts: str = ""
    epochs: str = ""
    best_val_elbo: float | None = None
    log_px: str = ""
    status: str = ""
    problem: str = ""

    def text(self) -> str:
        """The line, control characters shown as escapes (a run name is anyone's)."""
        name = terminal_text(self.name)
        if self.problem:
            return f"{name:24s} unreadable: {terminal_text(self.problem)}"
        elbo = f"{self.best_val_elbo:9.3f}" if self.best_val_elbo is not None else f"{'-':>9s}"
        return terminal_text(
            f"{name:24s} {self.dataset:14s} {self.parts:34s} {self.epochs:>7s} {elbo}  "
            f"{self.log_px or '-':40s} {self.status}"
        )


HEADER = (
    f"{'run':24s} {'data':14s} {'prior / guide / likelihood':34s} {'epochs':>7s} "
    f"{'val ELBO':>9s}  {'test log p(x) (estimator)':40s} status"
)


def _short_name(name: str, separator: str) -> str:
    """A name as ``list`` shows it, whole words only: an import path by its class
    (``mymod:MyPrior`` as ``MyPrior``), a data file by its file name."""
    return name.rstrip(separator).rsplit(separator, 1)[-1] or name


def describe_run(path: Path) -> RunLine:
    """One run's line; a run that cannot be read says why."""
    line = RunLine(path.name)
    try:
        run = RunDirectory.open(path)
        cfg = run.read_config()
        metrics = run.read_metrics()
        m = cfg.model
        line.dataset = _short_name(cfg.data.dataset, "/")
        line.parts = " / ".join(_short_name(n, ":") for n in (m.prior, m.guide, m.likelihood))
        done = max((r.epoch for r in metrics), default=0)
        line.epochs = f"{done}/{cfg.train.epochs}"
        line.best_val_elbo = max((r.val_elbo for r in metrics), default=None)
        headline = read_evaluations(run).headline()
        if headline:
            key, summary = headline
            line.log_px = f"{summary.log_px:.3f} ({key})"
        line.status = run_status(run, done, cfg.train.epochs)
    except (PyroVAEError, OSError, ValueError, TypeError, KeyError) as exc:
        line.problem = first_line(exc)
    return line


def list_runs(runs_dir: str | os.PathLike) -> list[RunLine]:
    """A line per run directory (a folder holding ``config.json``) in ``runs_dir``, by name."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise ConfigError(
            f"{root}: no such directory of runs (give the directory train or run wrote "
            "into: their --runs-dir, default runs)"
        )
    return [
        describe_run(p)
        for p in sorted(root.iterdir())
        if p.is_dir() and not p.is_symlink() and os.path.lexists(p / "config.json")
    ]


# ------------------------------------------------------------------ compare
@dataclass(frozen=True)
class ComparedRun:
    """One run's log p(x) over the compared images (mean, standard error) and, after the
    first, its paired difference to the first run."""

    run: str
    path: str
    log_px: float
    log_px_se: float
    num_examples: int
    diff: float | None = None
    diff_se: float | None = None


@dataclass
class Comparison:
    """Runs compared on one estimator over the same test images."""

    key: str
    rows: list[ComparedRun]
    noun: str = "image"
    """What an example is called (:func:`~.run_data.example_word`)."""

    def text(self) -> str:
        """The table, run names' control characters shown as escapes."""
        lines = [
            f"test log p(x), {terminal_text(describe_key(self.key))}; nats per {self.noun}, ± "
            f"standard error over the same {self.rows[0].num_examples} test {self.noun}s (higher "
            "is better):",
            f"  {'run':28s} {'log p(x)':>18s}  paired difference to "
            + terminal_text(self.rows[0].run),
        ]
        for r in self.rows:
            verdict, diff = "", "(reference)"
            if r.diff is not None and r.diff_se is not None:
                diff = f"{r.diff:+.3f} ± {r.diff_se:.3f}"
                if abs(r.diff) > 2 * r.diff_se:
                    verdict = "  better" if r.diff > 0 else "  worse"
                else:
                    verdict = "  not distinguishable (within 2 standard errors)"
            lines.append(
                f"  {terminal_text(r.run):28s} {r.log_px:9.3f} ± {r.log_px_se:.3f}  {diff}{verdict}"
            )
        return "\n".join(lines)


def _common_key(evaluations: list[Evaluations], names: list[str]) -> str:
    common = set(evaluations[0].estimates)
    for e in evaluations[1:]:
        common &= set(e.estimates)
    if not common:
        held = "; ".join(
            f"{n}: {', '.join(sorted(e.estimates)) or 'none'}"
            for n, e in zip(names, evaluations, strict=True)
        )
        raise ConfigError(
            "these runs hold no evaluation made the same way (" + held + "). Evaluate them "
            "alike first, e.g. pyro-vae evaluate RUN --num-samples 1000 for each."
        )
    best = Evaluations(
        split="test", estimates={k: evaluations[0].estimates[k] for k in common}
    ).headline()
    assert best is not None
    return best[0]


def _refuse_different_data(runs: list[RunDirectory], names: list[str]) -> None:
    """Runs trained on different data sets or pixel treatments score different things: no
    evaluation can make their log p(x) comparable, so that is said first (not "evaluate them
    alike")."""
    seen = []
    for run, name in zip(runs, names, strict=True):
        data = run.read_config().data
        seen.append((name, data.dataset, data.pixels))
    first = seen[0]
    for other in seen[1:]:
        pixels_differ = None not in (first[2], other[2]) and first[2] != other[2]
        if other[1] != first[1] or pixels_differ:
            raise ConfigError(
                f"{first[0]} ({first[1]}, pixels {first[2]}) and {other[0]} ({other[1]}, pixels "
                f"{other[2]}) model different data: their log p(x) cannot be compared, whatever "
                "they are evaluated with. Compare runs of the same data set and pixel treatment."
            )


def compare_runs(run_dirs: list[str | os.PathLike], key: str | None = None) -> Comparison:
    """Log p(x) of several runs by one estimator (``key``, default: the most expensive one
    they all hold) with paired differences to the first run. Refuses runs whose test tensors
    differ (data set, pixel treatment, image count or the evaluated tensor's fingerprint)."""
    if len(run_dirs) < 2:
        raise ConfigError("compare needs at least two run directories")
    runs = [RunDirectory.open(p) for p in run_dirs]
    names = run_labels(run_dirs)  # the same run twice refused; same-named runs told apart
    _refuse_different_data(runs, names)
    noun = example_word(runs[0].read_config().data)
    evaluations = [read_evaluations(r) for r in runs]
    if key is None:
        key = _common_key(evaluations, names)
    rows, reference = [], None
    for run, name, ev in zip(runs, names, evaluations, strict=True):
        summary = ev.estimates.get(key)
        if summary is None:
            raise ConfigError(
                f"{run.path} holds no {key} evaluation ({', '.join(sorted(ev.estimates)) or 'none'}"
                f"); run pyro-vae evaluate {run.path} with those settings first"
            )
        log_px = load_points(run, key).log_px
        if not isinstance(log_px, torch.Tensor) or log_px.dim() != 1:
            raise CheckpointError(f"{run.path}: the per-image values of {key} are not a vector")
        identity = {
            "dataset": summary.dataset,
            "pixels": summary.pixels,
            "num_examples": summary.num_examples,
            "data_sha256": summary.data_sha256,
        }
        if reference is None:
            reference = (identity, log_px, name)
        else:
            ref_identity, ref_px, ref_name = reference
            differ = [k for k in identity if identity[k] != ref_identity[k]]
            if differ or len(log_px) != len(ref_px):
                details = ", ".join(f"{k} {ref_identity[k]!r} vs {identity[k]!r}" for k in differ)
                raise ConfigError(
                    f"{ref_name} and {name} were not evaluated on the same test {noun}s "
                    f"({details or f'different {noun} counts'}): a paired comparison needs the "
                    "same test tensor"
                )
        diff = {}
        if rows:  # every run after the first: its paired difference to the first
            d = (log_px - reference[1]).double()
            diff = {"diff": float(d.mean()), "diff_se": float(d.std() / math.sqrt(len(d)))}
        rows.append(
            ComparedRun(
                run=name,
                path=str(run.path),
                log_px=float(log_px.double().mean()),
                log_px_se=float(log_px.double().std() / math.sqrt(len(log_px))),
                num_examples=len(log_px),
                **diff,
            )
        )
    return Comparison(key, rows, noun)
