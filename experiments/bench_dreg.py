"""Benchmark: the cost of DReG gradients (``--elbo iwae-dreg``) against the plain IWAE step.

DReG (doubly reparameterized gradients, Tucker et al. 2018) runs the guide a second time per
step, with its parameters held fixed, to re-score log q(z_k | x), and multiplies each draw's
gradient by its normalized weight on the way back. This times whole training steps of the
50-epoch recipe's model (Fashion-MNIST, 784-400-20, VampPrior, dynamic binarization, batch
128, Adam 3e-3) with both objectives, for several numbers of importance samples K,
interleaved in chunks of ``--chunk`` steps (this machine's speed drifts), and prints ms per
step and the ratio (DReG / IWAE), medians over ``--repeats``.

    python experiments/bench_dreg.py [--particles 5 10 20] [--pseudo-inputs 500]
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

OBJECTIVES = ("iwae", "iwae-dreg")


def stepper(args, data, device, objective: str, particles: int):
    cfg = run_config(
        args,
        model={"prior": "vamp", "prior_kwargs": {"pseudo_inputs": args.pseudo_inputs}},
        data={"pixels": "dynamic"},
        train={"elbo": objective, "particles": particles, "epochs": 1},
        published=False,
    )
    pyro.set_rng_seed(0)
    vae = build_vae(cfg.model, data.data_dim, cfg.data.pixels).to(device)
    trainer = Trainer(vae, cfg.train, data, device=device, progress=False, pixels=cfg.data.pixels)
    return trainer.step, cfg.train.batch_size


def main() -> None:
    shared = get_args_parser(device="cpu", dataset="fashion-mnist", threads=None)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[shared])
    parser.add_argument("--particles", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--pseudo-inputs", type=int, default=500)
    parser.add_argument("--steps", type=int, default=40, help="steps per objective per repeat")
    parser.add_argument("--chunk", type=int, default=10, help="steps per interleaved chunk")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    benchmark_settings(args)
    device = resolve_device(args.device)
    data = full_training_set(args.dataset)
    x_all = torch.bernoulli(unit_interval(data.train, data.levels)).to(device)
    print(
        f"{args.dataset}, 784-400-20, VampPrior ({args.pseudo_inputs} pseudo-inputs), {device}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, pyro {pyro.__version__}; "
        f"{args.steps} steps per objective and repeat, interleaved in chunks of {args.chunk}; "
        f"medians of {args.repeats}"
    )
    print(f"\n{'K':>4s} {'IWAE ms':>8s} {'DReG ms':>8s} {'DReG / IWAE':>12s}")
    for k in args.particles:
        steppers, b = {}, 128
        for objective in OBJECTIVES:
            steppers[objective], b = stepper(args, data, device, objective, k)
        runs = interleaved_step_seconds(steppers, x_all, b, args.steps, args.chunk, args.repeats)
        ms = {name: 1e3 * statistics.median(r[name] for r in runs) for name in OBJECTIVES}
        ratio = statistics.median(r["iwae-dreg"] / r["iwae"] for r in runs)
        print(f"{k:4d} {ms['iwae']:8.1f} {ms['iwae-dreg']:8.1f} {ratio:11.2f}x", flush=True)


if __name__ == "__main__":
    main()
