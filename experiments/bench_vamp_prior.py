"""Benchmark: the VampPrior's log-density by matrix products against ``MixtureSameFamily``.

The VampPrior p(z) = (1/K) sum_k q(z | u_k) is scored at every training step for every
particle and image. ``MixtureSameFamily`` builds ``(particles, batch, K, latent)`` tensors to
do it; with the diagonal guide pyro-vae expands the squares instead
(sum_d lambda_kd (z_d - mu_kd)^2 = z^2 . lambda_k - 2 z . mu_k lambda_k + mu_k^2 . lambda_k,
two matrix products; ``VampPrior.matmul_density``). This times whole training steps
(Fashion-MNIST, 784-400-20, dynamic binarization, batch 128, Adam 3e-3; the JIT-compiled ELBO
step for one particle, the IWAE step for more, as the quality preset trains) both ways, for
several numbers of pseudo-inputs and IWAE particles, interleaved in chunks of ``--chunk``
steps (this machine's speed drifts), and prints ms per step and the speed-up
(generic / matrix products), medians over ``--repeats``.

    python experiments/bench_vamp_prior.py [--pseudo-inputs 100 500] [--particles 1 5 10]
"""

from __future__ import annotations

import argparse
import statistics

import pyro
import torch
from bench_training import full_training_set, interleaved_step_seconds
from common import benchmark_settings, get_args_parser, run_config

from pyro_vae import Trainer, build_vae
from pyro_vae.data.pixels import unit_interval
from pyro_vae.infer.training import resolve_device

VARIANTS = {"generic": False, "matmul": True}
"""Variant name: the VampPrior's ``matmul_density``."""


def stepper(args, data, device, pseudo_inputs: int, particles: int, matmul: bool):
    cfg = run_config(
        args,
        model={"prior": "vamp", "prior_kwargs": {"pseudo_inputs": pseudo_inputs}},
        data={"pixels": "dynamic"},
        train={"elbo": "iwae" if particles > 1 else "trace", "particles": particles, "epochs": 1},
        published=False,
    )
    pyro.set_rng_seed(0)
    vae = build_vae(cfg.model, data.data_dim, cfg.data.pixels).to(device)
    vae.prior.matmul_density = matmul
    trainer = Trainer(vae, cfg.train, data, device=device, progress=False, pixels=cfg.data.pixels)
    return trainer.step, cfg.train.batch_size


def main() -> None:
    shared = get_args_parser(device="cpu", dataset="fashion-mnist", threads=None)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[shared])
    parser.add_argument("--pseudo-inputs", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--particles", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--steps", type=int, default=60, help="steps per variant per repeat")
    parser.add_argument("--chunk", type=int, default=10, help="steps per interleaved chunk")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    benchmark_settings(args)
    device = resolve_device(args.device)
    data = full_training_set(args.dataset)
    x_all = torch.bernoulli(unit_interval(data.train, data.levels)).to(device)
    print(
        f"{args.dataset}, 784-400-20, VampPrior, {device}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, pyro {pyro.__version__}; {args.steps} steps per variant "
        f"and repeat, interleaved in chunks of {args.chunk}; medians of {args.repeats}"
    )
    print(
        f"\n{'pseudo-inputs':>13s} {'particles':>9s} {'generic ms':>11s} {'matmul ms':>10s} "
        f"{'speed-up':>9s}"
    )
    for k in args.pseudo_inputs:
        for p in args.particles:
            steppers, b = {}, 128
            for name, matmul in VARIANTS.items():
                steppers[name], b = stepper(args, data, device, k, p, matmul)
            runs = interleaved_step_seconds(
                steppers, x_all, b, args.steps, args.chunk, args.repeats
            )
            ms = {name: 1e3 * statistics.median(r[name] for r in runs) for name in VARIANTS}
            speedup = statistics.median(r["generic"] / r["matmul"] for r in runs)
            print(
                f"{k:13d} {p:9d} {ms['generic']:11.1f} {ms['matmul']:10.1f} {speedup:8.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
