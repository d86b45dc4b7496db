"""Benchmark: step time and peak memory of every built-in prior x guide pair, and of each
objective on the default pair ("no cliffs in the grid").

Each row trains in its own subprocess with one torch thread (so that rows do not share memory
or threads, and the peak resident memory, ``VmHWM``, is that row's alone): the model is
today's default (784- or 64-400-20 MLPs, grey levels, batch 128, Adam 3e-3, the JIT-compiled
ELBO where it applies) with only the prior, the guide or the objective changed. A row takes
``--warmup`` untimed steps, then chunks of 5 steps on random minibatches of the training set
until ``--steps`` steps and ``--seconds`` have passed; its time is the median chunk's ms per
step (a burst of other work on a shared machine moves a median less than a mean). The peak
resident memory is taken from the end of the setup on (the peak while the data set is read
does not count), printed whole and as what the steps added to the memory held before them
(torch alone holds 0.5 GB; with digits and the model about 0.8 GB, with Fashion-MNIST more).
The default pair is measured first and last, and each row's ratio is its step time over the
mean of those two (measured in the same run, under the same load). Rows slower than
``--max-ratio`` times the default or above ``--max-mb`` of peak resident memory are flagged
(the issue's limits for digits: 10x and 1 GB); a pair the library refuses is listed with its
one-line reason.
Objectives with a minimum number of particles above 1 (the IWAE bounds) use ``--particles``.

    python experiments/bench_grid.py [--dataset digits|fashion-mnist] [--steps 20] [--markdown]

A row is also available alone (what each subprocess runs), printing one JSON line::

    python experiments/bench_grid.py --row vamp diagonal trace
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common import get_args_parser

from pyro_vae.config.names import BUILTIN_PARTS, ELBO_NAMES

DEFAULT = ("mog", "diagonal", "trace")
"""The default prior, guide and objective (``pyro-vae train`` with no options)."""

HERE = Path(__file__).resolve()
CHUNK = 5
"""Steps per timed chunk."""


@dataclass(frozen=True)
class Row:
    """One measured row: ms per step (``None`` when refused or failed), the peak resident MB of
    its process and how much of it the training steps added (the rest is torch, the data and
    the model), and the refusal or failure in one line."""

    prior: str
    guide: str
    elbo: str
    ms: float | None
    peak_mb: float
    step_mb: float = float("nan")
    note: str = ""

    @property
    def name(self) -> str:
        return f"{self.prior} / {self.guide} / {self.elbo}"


def rows_to_measure() -> list[tuple[str, str, str]]:
    """Every built-in prior x guide pair with the default objective, then every other objective
    on the default pair."""
    pairs = [(p, g, DEFAULT[2]) for p in BUILTIN_PARTS["prior"] for g in BUILTIN_PARTS["guide"]]
    pairs += [(DEFAULT[0], DEFAULT[1], e) for e in ELBO_NAMES if e != DEFAULT[2]]
    return pairs


# ------------------------------------------------------------------ one row (the subprocess)
def _status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``: kB) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_mb() -> float:
    """This process's peak resident memory in MB since the last :func:`reset_peak` (Linux)."""
    return _status_mb("VmHWM")


def reset_peak() -> float:
    """Restart the peak at the present resident memory (``clear_refs`` 5, Linux >= 4.0), so
    that a transient peak while the data set was read is not counted; returns that MB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def measure_row(args: argparse.Namespace, prior: str, guide: str, elbo: str) -> dict:
    """Build the row's model and trainer, run the warm-up and timed steps; the result as a
    JSON-able dict (a refused configuration: its message, ``ms`` None)."""
    import pyro
    import torch
    from common import run_config

    from pyro_vae import Trainer, build_vae, load_dataset
    from pyro_vae.config.objectives import OBJECTIVES
    from pyro_vae.errors import PyroVAEError

    torch.set_num_threads(1)
    particles = args.particles if OBJECTIVES[elbo].min_particles > 1 else 1
    out = {"prior": prior, "guide": guide, "elbo": elbo}
    try:
        cfg = run_config(
            args,
            model={"prior": prior, "guide": guide},
            train={"elbo": elbo, "particles": particles, "epochs": 1},
            published=False,
        )
        data = load_dataset(cfg.data.dataset, download=False)
        pyro.set_rng_seed(0)
        vae = build_vae(cfg.model, data.data_dim, cfg.data.pixels)
        trainer = Trainer(vae, cfg.train, data, device=torch.device("cpu"), progress=False)
    except PyroVAEError as e:
        return {**out, "ms": None, "peak_mb": peak_mb(), "step_mb": 0.0, "note": str(e)}
    x_all = trainer.data.epoch()  # the training images as the trainer sees them
    before = reset_peak()
    chunk_ms = step_chunks(trainer.step, x_all, cfg.train.batch_size, args)
    peak = peak_mb()
    ms = statistics.median(chunk_ms)
    return {**out, "ms": ms, "peak_mb": peak, "step_mb": peak - before}


def step_chunks(step, x_all, batch_size: int, args: argparse.Namespace) -> list[float]:
    """ms per step of each timed chunk of :data:`CHUNK` steps on random minibatches, after
    ``--warmup`` untimed steps: chunks until ``--steps`` steps and ``--seconds`` have passed.
    The row's time is the median chunk's, so a burst of other work on a shared machine moves
    it less than it moves a mean."""
    import torch

    def minibatches(n: int) -> list:
        return [x_all[i] for i in torch.randint(len(x_all), (n, batch_size))]

    for x in minibatches(args.warmup):
        step(x)
    chunks, steps, started = [], 0, time.perf_counter()
    while steps < args.steps or time.perf_counter() - started < args.seconds:
        batches = minibatches(CHUNK)
        start = time.perf_counter()
        for x in batches:
            step(x)
        chunks.append(1e3 * (time.perf_counter() - start) / CHUNK)
        steps += CHUNK
    return chunks


# ------------------------------------------------------------------ the table (the parent)
def run_row(args: argparse.Namespace, row: tuple[str, str, str]) -> Row:
    """One row measured in a fresh one-thread subprocess (``--timeout`` seconds at most)."""
    command = [sys.executable, str(HERE), "--row", *row, "--dataset", args.dataset]
    command += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    command += ["--seconds", str(args.seconds)]
    command += ["--particles", str(args.particles)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=args.timeout
        )
    except subprocess.TimeoutExpired:
        return Row(*row, None, float("nan"), note=f"over {args.timeout:g} s (stopped)")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return Row(*row, None, float("nan"), note=f"failed: {last}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Row(**result)


def flags(row: Row, default_ms: float, args: argparse.Namespace) -> str:
    found = []
    if row.ms is not None and row.ms > args.max_ratio * default_ms:
        found.append(f">{args.max_ratio:g}x")
    if row.peak_mb > args.max_mb:
        found.append(f">{args.max_mb:g} MB")
    return " ".join(found)


def print_table(rows: list[Row], default_ms: float, args: argparse.Namespace) -> None:
    """The table (Markdown with ``--markdown``), then the reasons of refused or failed rows."""
    notes: list[str] = []
    if args.markdown:
        print("| prior / guide / objective | ms / step | × default | peak MB | steps' MB | flag |")
        print("|---|---|---|---|---|---|")
    else:
        head = ("prior / guide / objective", "ms/step", "x default", "peak MB", "steps MB")
        print(f"{head[0]:36s} {head[1]:>9s} {head[2]:>9s} {head[3]:>8s} {head[4]:>8s}")
    for row in rows:
        ms = "—" if row.ms is None else f"{row.ms:.1f}"
        ratio = "—" if row.ms is None else f"{row.ms / default_ms:.2f}"
        flag = flags(row, default_ms, args)
        if row.note:
            notes.append(row.note)
            flag = f"{'refused' if row.ms is None else 'note'} ({len(notes)})"
        if args.markdown:
            memory = f"{row.peak_mb:.0f} | {row.step_mb:.0f}"
            print(f"| {row.name} | {ms} | {ratio} | {memory} | {flag} |")
        else:
            memory = f"{row.peak_mb:8.0f} {row.step_mb:8.0f}"
            print(f"{row.name:36s} {ms:>9s} {ratio:>9s} {memory}  {flag}", flush=True)
    for k, note in enumerate(notes, 1):
        print(f"\n({k}) {note}")


def main() -> None:
    shared = get_args_parser(dataset="digits", seed=0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[shared])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per row, at least")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds a row, at least")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--particles", type=int, default=5, help="particles of the IWAE rows")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per row at most")
    parser.add_argument("--max-ratio", type=float, default=10.0, help="flag rows slower than this")
    parser.add_argument("--max-mb", type=float, default=1024.0, help="flag peaks above this")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument(
        "--row", nargs=3, metavar=("PRIOR", "GUIDE", "ELBO"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.row:
        print(json.dumps(measure_row(args, *args.row)))
        return
    print(
        f"{args.dataset}, batch 128, default options otherwise; each row in its own process with "
        f"1 thread, {args.warmup} warm-up steps, then chunks of {CHUNK} steps for at least "
        f"{args.steps} steps and {args.seconds:g} s: the median chunk's ms per step; peak "
        f"resident MB of the process and what the steps added to it"
    )
    first = run_row(args, DEFAULT)
    rows = [run_row(args, row) for row in rows_to_measure() if row != DEFAULT]
    last = run_row(args, DEFAULT)
    if first.ms is None or last.ms is None:
        sys.exit(f"bench_grid.py: error: the default pair did not run: {first.note or last.note}")
    default_ms = (first.ms + last.ms) / 2
    print(f"default ({' / '.join(DEFAULT)}): {first.ms:.1f} ms first, {last.ms:.1f} ms last\n")
    print_table([first, *rows], default_ms, args)


if __name__ == "__main__":
    main()
