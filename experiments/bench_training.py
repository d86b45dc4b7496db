"""Benchmark: what does writing the VAE as a Pyro program cost per training epoch?

One epoch of Fashion-MNIST (all 60,000 training images, dynamically binarized, preloaded as a
tensor), 784-400-20 MLP VAE, batch 128, Adam (lr 1e-3). Variants, alternated round-robin
``--repeats`` times (this machine is noisy), medians reported:

* ``torch``     a plain PyTorch loop over the identical networks and the identical one-sample
                ELBO estimate, written by hand (the reference);
* ``pyro``      pyro-vae's training step: ``Trace_ELBO().differentiable_loss`` on the Pyro
                model/guide + one fused ``torch.optim.Adam`` (the library default);
* ``pyro-jit``  the same with ``JitTrace_ELBO`` (``--jit``);
* ``pyro-svi``  the textbook ``pyro.infer.SVI`` with ``pyro.optim.Adam`` (one Adam per
                parameter tensor), for comparison.

Prints images per second for each and the ratio to ``torch`` (target: pyro >= 0.90).

    python experiments/bench_training.py [--repeats 5] [--batch-sizes 128 256] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import time
import warnings

import pyro
import torch
import torch.nn.functional as F
from common import get_args_parser, run_config

from pyro_vae import ImageDataset, Split, Trainer, build_vae, load_dataset
from pyro_vae.data.pixels import unit_interval
from pyro_vae.infer.training import make_optimizer, resolve_device

LOG_2PI = math.log(2 * math.pi)


def full_training_set(name: str) -> ImageDataset:
    """All 60,000 official training images as the training split."""
    data = load_dataset(name, download=False)
    train = Split(
        torch.cat([data.train.images, data.val.images]),
        torch.cat([data.train.labels, data.val.labels]),
    )
    return ImageDataset(data.name, train, data.test, data.test, data.levels, data.source)


def torch_epoch(vae, x_all: torch.Tensor, batch_size: int, lr: float) -> float:
    """Reference: the same networks and the same one-sample ELBO, in plain PyTorch."""
    encoder_net, decoder = vae.encoder.net, vae.decoder
    min_scale = vae.encoder.min_scale
    optimizer = make_optimizer(vae.parameters(), lr)
    n = len(x_all)
    perm = torch.randperm(n, device=x_all.device)
    start = time.perf_counter()
    for i in range(math.ceil(n / batch_size)):
        x = x_all[perm[i * batch_size : (i + 1) * batch_size]]
        loc, raw_scale = encoder_net(x).chunk(2, dim=-1)
        scale = F.softplus(raw_scale) + min_scale
        z = loc + scale * torch.randn_like(loc)
        log_lik = -F.binary_cross_entropy_with_logits(decoder(z), x, reduction="none").sum(-1)
        log_prior = (-0.5 * z.pow(2) - 0.5 * LOG_2PI).sum(-1)
        log_q = (-0.5 * ((z - loc) / scale).pow(2) - scale.log() - 0.5 * LOG_2PI).sum(-1)
        loss = -(n / len(x)) * (log_lik + log_prior - log_q).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()  # the library reads the loss every step too
    return n / (time.perf_counter() - start)


def trainer_epoch(trainer: Trainer, x_all: torch.Tensor, b: int) -> float:
    """pyro-vae's own training step over one epoch."""
    n = len(x_all)
    perm = torch.randperm(n, device=x_all.device)
    start = time.perf_counter()
    for i in range(math.ceil(n / b)):
        trainer.step(x_all[perm[i * b : (i + 1) * b]])
    return n / (time.perf_counter() - start)


def svi_epoch(vae, x_all: torch.Tensor, batch_size: int, lr: float) -> float:
    """Textbook Pyro: pyro.infer.SVI with pyro.optim.Adam (one optimizer per parameter)."""
    svi = pyro.infer.SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": lr}), pyro.infer.Trace_ELBO())
    n = len(x_all)
    perm = torch.randperm(n, device=x_all.device)
    start = time.perf_counter()
    # a param store of its own, so that the JIT trainer's store is left alone
    with pyro.get_param_store().scope(), pyro.validation_enabled(False):
        for i in range(math.ceil(n / batch_size)):
            svi.step(x_all[perm[i * batch_size : (i + 1) * batch_size]], num_data=n)
    return n / (time.perf_counter() - start)


def main() -> None:
    shared = get_args_parser(device="cpu", dataset="fashion-mnist")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[shared])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--variants", nargs="+", default=["torch", "pyro", "pyro-jit", "pyro-svi"])
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    data = full_training_set(args.dataset)
    cfg = run_config(
        args,
        model={"hidden": [400], "latent_dim": 20},
        train={"lr": 1e-3, "epochs": 1, "batch_size": min(args.batch_sizes)},
    )
    pyro.set_rng_seed(0)
    template = build_vae(cfg.model, data.data_dim, cfg.data.pixels).to(device)
    x_all = torch.bernoulli(unit_interval(data.train, data.levels)).to(device)

    def fresh_vae():
        return copy.deepcopy(template)

    trainers = {}
    for jit in (False, True):
        cfg.train.jit = jit
        trainers[jit] = Trainer(
            fresh_vae(), cfg.train, data, device=device, progress=False, pixels=cfg.data.pixels
        )
        for b in args.batch_sizes:  # warm-up (and JIT compilation), not timed
            for _ in range(3):
                trainers[jit].step(x_all[:b])

    print(
        f"{args.dataset}: {len(x_all)} images, 784-400-20 MLP, {device}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, pyro {pyro.__version__}; "
        f"{args.repeats} alternating repeats"
    )
    summary: dict[str, dict] = {}
    for b in args.batch_sizes:
        runners = {
            "torch": lambda b=b: torch_epoch(fresh_vae(), x_all, b, 1e-3),
            "pyro": lambda b=b: trainer_epoch(trainers[False], x_all, b),
            "pyro-jit": lambda b=b: trainer_epoch(trainers[True], x_all, b),
            "pyro-svi": lambda b=b: svi_epoch(fresh_vae(), x_all, b, 1e-3),
        }
        results: dict[str, list[float]] = {v: [] for v in args.variants}
        for r in range(args.repeats):
            for variant in args.variants:
                results[variant].append(runners[variant]())
            line = "  ".join(f"{v} {results[v][-1]:7.0f}" for v in results)
            print(f"  batch {b} repeat {r + 1}: {line}")
        reference = statistics.median(results["torch"]) if "torch" in results else float("nan")
        for variant, values in results.items():
            median = statistics.median(values)
            summary[f"{b}/{variant}"] = {
                "batch_size": b,
                "variant": variant,
                "images_per_second": median,
                "ratio": median / reference,
                "all": values,
            }
    print(f"\n{'batch':>5s}  {'variant':10s} {'images/s (median)':>18s} {'ratio to torch':>15s}")
    for row in summary.values():
        print(
            f"{row['batch_size']:5d}  {row['variant']:10s} {row['images_per_second']:18.0f} "
            f"{row['ratio']:15.3f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            meta = {"threads": torch.get_num_threads(), "device": str(device)}
            json.dump({**meta, "results": list(summary.values())}, f, indent=2)


if __name__ == "__main__":
    main()
