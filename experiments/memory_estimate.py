"""How close the memory estimate that guards a run (``pyro_vae.infer.memory``) comes to what a
run really uses: for a few configurations, one epoch of ``pyro-vae train`` on ``digits`` in a
child process, its peak resident memory minus that of the same command with a tiny model (the
interpreter, torch, Pyro and the data), against the estimate.

    python experiments/memory_estimate.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile

import torch

from pyro_vae import RunConfig, build_vae, load_dataset
from pyro_vae.infer.memory import estimate_memory, format_bytes

CONFIGS = {
    "tiny (reference)": ["--hidden", "16", "--latent-dim", "2"],
    "default (400, 20)": [],
    "--particles 1000": ["--particles", "1000"],
    "--eval-particles 2000": ["--eval-particles", "2000"],
    "--hidden 3000 3000": ["--hidden", "3000", "3000"],
    "--latent-dim 20000": ["--latent-dim", "20000"],
}


def peak_rss(args: list[str]) -> int:
    """Peak resident memory (bytes) of one epoch of ``pyro-vae train args`` in a child."""
    code = (
        "import resource, sys\n"
        "from pyro_vae.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        "sys.exit(code)\n"
    )
    with tempfile.TemporaryDirectory() as runs:
        out = subprocess.run(
            [sys.executable, "-c", code, "train", "--epochs", "1", "--quiet"]
            + ["--runs-dir", runs, *args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return int(out.split()[-1]) * 1024  # ru_maxrss is in kilobytes on Linux


def estimate(args: list[str], data) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hidden", type=int, nargs="+", default=[400])
    parser.add_argument("--latent-dim", type=int, default=20)
    parser.add_argument("--particles", type=int, default=1)
    parser.add_argument("--eval-particles", type=int, default=10)
    a = parser.parse_args(args)
    cfg = RunConfig()
    cfg.model.hidden, cfg.model.latent_dim = a.hidden, a.latent_dim
    with torch.device("meta"):
        vae = build_vae(cfg.model, data.data_dim, "dynamic")
    return estimate_memory(
        vae,
        data.data_dim,
        a.latent_dim,
        128,
        particles=a.particles,
        eval_particles=a.eval_particles,
        num_train=len(data.train),
        num_val=len(data.val),
    ).total


def main() -> None:
    data = load_dataset("digits")
    base = peak_rss(CONFIGS["tiny (reference)"])
    print(f"reference peak (interpreter, torch, Pyro, data, tiny model): {format_bytes(base)}")
    print(f"{'configuration':24s} {'estimate':>10s} {'measured':>10s}  ratio")
    for name, args in CONFIGS.items():
        if name.startswith("tiny"):
            continue
        est, used = estimate(args, data), peak_rss(args) - base
        print(f"{name:24s} {format_bytes(est):>10s} {format_bytes(used):>10s}  {est / used:.2f}")


if __name__ == "__main__":
    main()
