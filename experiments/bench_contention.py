"""Training throughput when several trainings share the machine (issue 28, "throughput collapses
when the machine is shared").

Runs N default trainings on ``digits`` at once (N = 1, 2, 4 by default), each in its own
process, once with ``--threads 2`` (PyTorch's default on 2 cores) and once with ``--threads
auto`` (the free cores: :mod:`pyro_vae.app.threads`), and prints each configuration's training
images per second per run (from the runs' own ``metrics.jsonl``: examples seen over the
epochs' seconds, validation excluded) and the ratio to the same policy's solo run::

    python experiments/bench_contention.py --epochs 20 --runs 1 2 4

Take it on an otherwise idle machine: other work is contention too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pyro_vae.store.metrics import MetricsRecord


def _train_together(
    n: int, threads: str, epochs: int, root: Path, dataset: str = "digits"
) -> list[float]:
    """Start ``n`` trainings at once; their training images per second."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    procs = []
    for i in range(n):
        argv = [sys.executable, "-m", "pyro_vae", "train", "--epochs", str(epochs), "--quiet"]
        argv += ["--dataset", dataset]
        argv += ["--runs-dir", str(root), "--name", f"r{i}", "--threads", threads]
        procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL))
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"a training failed (exit {proc.returncode})")
    rates = []
    for i in range(n):
        lines = (root / f"r{i}" / "metrics.jsonl").read_text().splitlines()
        records = [MetricsRecord.from_json(json.loads(line)) for line in lines]
        seconds = sum(r.epoch_seconds or 0.0 for r in records[1:])  # the first epoch compiles
        examples = (records[-1].examples_seen or 0) - (records[0].examples_seen or 0)
        rates.append(examples / seconds)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--policies", nargs="+", default=["2", "auto"])
    parser.add_argument("--dataset", default="digits")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; {args.dataset}, default model, {args.epochs} epochs per run")
    print(f"{'--threads':>9} {'runs':>4} {'images/s per run':>17} {'of solo':>8}  wall s")
    for policy in args.policies:
        solo = None
        for n in args.runs:
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                rates = _train_together(n, policy, args.epochs, Path(tmp), args.dataset)
                wall = time.perf_counter() - start
            mean = statistics.fmean(rates)
            solo = solo or (mean if n == 1 else None)
            ratio = f"{mean / solo:8.2f}" if solo else f"{'':>8}"
            print(f"{policy:>9} {n:>4} {mean:17,.0f} {ratio}  {wall:6.1f}")


if __name__ == "__main__":
    main()
