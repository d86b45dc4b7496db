"""Benchmark: what does writing the VAE as a Pyro program cost per training step?

Fashion-MNIST (all 60,000 training images, dynamically binarized once, preloaded as a tensor),
784-400-20 MLP VAE, Adam (lr 1e-3). Variants of the same one-sample ELBO step:

* ``torch``     a plain PyTorch loop over the identical networks and the identical one-sample
                ELBO estimate, written by hand (the reference);
* ``pyro``      pyro-vae's training step as it is by default: ``Trainer.step``, the
                JIT-compiled ``Trace_ELBO`` on the Pyro model/guide + one fused
                ``torch.optim.Adam``;
* ``pyro-eager`` the same step without the JIT (``--no-jit``: what runs for a user's own
                parts, ``--elbo iwae`` or ``meanfield``);
* ``torch-mix`` the hand-written loop with pyro-vae's *default* prior, a learned mixture of 10
                diagonal Gaussians, written in plain torch (log-sum-exp over components);
* ``torch-mix-compiled`` the same loop's loss under ``torch.compile`` (compilation untimed);
* ``pyro-mix``  pyro-vae's default model and objective: ``Trainer.step`` with the mixture prior
                and the JIT-compiled ``Trace_ELBO`` (the ratio to read: ``pyro-mix`` against
                ``torch-mix``; target >= 1.0);
* ``pyro-compiled``, ``pyro-mix-compiled`` ``pyro`` and ``pyro-mix`` with ``--elbo compiled``:
                the ELBO traced into one graph and compiled by ``torch.compile`` (Inductor);
                each variant's warm-up (compile) seconds are printed.

This machine's speed drifts by tens of per cent within seconds, so the variants are
interleaved finely: each epoch's minibatches are taken in chunks of ``--chunk`` steps, every
variant running each chunk in a rotating order, and each variant's time is summed over the
epoch. The ratio to ``torch`` is computed per epoch (both measured under the same
conditions); the medians over ``--repeats`` epochs are printed (target: pyro >= 0.90).

    python experiments/bench_training.py [--repeats 5] [--batch-sizes 128 1024] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import time
from collections.abc import Callable

import pyro
import torch
import torch.nn.functional as F
from common import benchmark_settings, get_args_parser, run_config

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


def torch_loss(vae, x: torch.Tensor, n: int) -> torch.Tensor:
    """The one-sample estimate of the whole data set's negative ELBO, -(N / B) sum_n
    [log p(x_n | z_n) + log N(z_n; 0, I) - log q(z_n | x_n)], written by hand over the VAE's
    own networks (the reference the Pyro step is compared with)."""
    loc, raw_scale = vae.encoder.net(x).chunk(2, dim=-1)
    scale = F.softplus(raw_scale) + vae.encoder.min_scale
    z = loc + scale * torch.randn_like(loc)
    log_lik = -F.binary_cross_entropy_with_logits(vae.decoder(z), x, reduction="none").sum(-1)
    log_prior = (-0.5 * z.pow(2) - 0.5 * LOG_2PI).sum(-1)
    log_q = (-0.5 * ((z - loc) / scale).pow(2) - scale.log() - 0.5 * LOG_2PI).sum(-1)
    return -(n / len(x)) * (log_lik + log_prior - log_q).sum()


def mixture_log_prior(prior, z: torch.Tensor) -> torch.Tensor:
    """log p(z) under the mixture prior's own parameters, by hand:
    log sum_k softmax(logits)_k N(z; mu_k, diag sigma_k^2), sigma = softplus(raw) + 1e-4."""
    scale = F.softplus(prior.raw_scales) + 1e-4  # [K, D]
    diff = (z.unsqueeze(-2) - prior.locs) / scale  # [B, K, D]
    per_component = (-0.5 * diff.pow(2) - scale.log() - 0.5 * LOG_2PI).sum(-1)
    return torch.logsumexp(per_component + torch.log_softmax(prior.logits, -1), dim=-1)


def torch_mixture_loss(vae, x: torch.Tensor, n: int) -> torch.Tensor:
    """:func:`torch_loss` with the default mixture prior in place of N(0, I)."""
    loc, raw_scale = vae.encoder.net(x).chunk(2, dim=-1)
    scale = F.softplus(raw_scale) + vae.encoder.min_scale
    z = loc + scale * torch.randn_like(loc)
    log_lik = -F.binary_cross_entropy_with_logits(vae.decoder(z), x, reduction="none").sum(-1)
    log_q = (-0.5 * ((z - loc) / scale).pow(2) - scale.log() - 0.5 * LOG_2PI).sum(-1)
    return -(n / len(x)) * (log_lik + mixture_log_prior(vae.prior, z) - log_q).sum()


def torch_stepper(
    vae, n: int, lr: float, loss_fn: Callable = torch_loss
) -> Callable[[torch.Tensor], None]:
    """Reference: the same networks and the same one-sample ELBO, in plain PyTorch."""
    optimizer = make_optimizer(vae.parameters(), lr)

    def step(x: torch.Tensor) -> None:
        loss = loss_fn(vae, x, n)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()  # the library reads the loss every step too

    return step


def scoped(step: Callable[[torch.Tensor], None], scope: dict) -> Callable[[torch.Tensor], None]:
    """``step`` run in its own Pyro parameter store (two trainers of one model share names;
    the JIT traces the store's parameters), swapped in per call (about 20 us, the same for
    every Pyro variant)."""
    store = pyro.get_param_store()

    def run(x: torch.Tensor) -> None:
        with store.scope(scope):
            step(x)

    return run


def interleaved_epoch(
    steppers: dict[str, Callable[[torch.Tensor], None]],
    x_all: torch.Tensor,
    batch_size: int,
    chunk: int,
) -> dict[str, float]:
    """Seconds each variant spends on one epoch of the same minibatches, the epoch taken in
    chunks of ``chunk`` steps that every variant runs in turn (rotating who goes first)."""
    perm = torch.randperm(len(x_all), device=x_all.device)
    batches = [x_all[idx] for idx in perm.split(batch_size)]
    names = list(steppers)
    seconds = dict.fromkeys(names, 0.0)
    for k, start in enumerate(range(0, len(batches), chunk)):
        r = k % len(names)
        for name in names[r:] + names[:r]:
            step = steppers[name]
            t = time.perf_counter()
            for x in batches[start : start + chunk]:
                step(x)
            seconds[name] += time.perf_counter() - t
    return seconds


def interleaved_step_seconds(
    steppers: dict[str, Callable[[torch.Tensor], None]],
    x_all: torch.Tensor,
    batch_size: int,
    steps: int,
    chunk: int,
    repeats: int,
) -> list[dict[str, float]]:
    """Seconds per step of each variant, one dict per repeat: each variant warmed up by three
    untimed steps, then ``repeats`` times ``steps`` steps on the same random minibatches,
    interleaved in chunks (:func:`interleaved_epoch`)."""
    for step in steppers.values():
        for _ in range(3):
            step(x_all[:batch_size])
    out = []
    for _ in range(repeats):
        x = x_all[torch.randperm(len(x_all))[: steps * batch_size]]
        seconds = interleaved_epoch(steppers, x, batch_size, chunk)
        out.append({name: s / steps for name, s in seconds.items()})
    return out


VARIANTS = ("torch", "pyro", "pyro-eager", "torch-mix", "torch-mix-compiled", "pyro-mix")
COMPILED = ("pyro-compiled", "pyro-mix-compiled")  # --elbo compiled: chosen with --variants


def main() -> None:
    shared = get_args_parser(device="cpu", dataset="fashion-mnist", threads=None)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[shared])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128])
    parser.add_argument("--chunk", type=int, default=20, help="steps per interleaved chunk")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS + COMPILED),
        default=list(VARIANTS),
    )
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    benchmark_settings(args)
    device = resolve_device(args.device)

    data = full_training_set(args.dataset)
    cfg = run_config(
        args,
        model={"hidden": [400], "latent_dim": 20, "prior": "normal"},  # the torch loop's model
        train={"lr": 1e-3, "epochs": 1, "batch_size": min(args.batch_sizes)},
        published=False,  # today's default training path
    ).copy()  # varied below: a plain copy of the resolved configuration
    pyro.set_rng_seed(0)
    template = build_vae(cfg.model, data.data_dim, cfg.data.pixels).to(device)
    cfg.model.prior = "mog"  # the default prior (10 components)
    pyro.set_rng_seed(0)
    mixture_template = build_vae(cfg.model, data.data_dim, cfg.data.pixels).to(device)
    x_all = torch.bernoulli(unit_interval(data.train, data.levels)).to(device)

    n = len(x_all)
    print(
        f"{args.dataset}: {n} images, 784-400-20 MLP, {device}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, pyro {pyro.__version__}; "
        f"{args.repeats} epochs, variants interleaved in chunks of {args.chunk} steps"
    )
    summary: dict[str, dict] = {}
    for b in args.batch_sizes:
        steppers: dict[str, Callable[[torch.Tensor], None]] = {}
        for variant in args.variants:
            if variant == "torch":
                steppers[variant] = torch_stepper(copy.deepcopy(template), n, 1e-3)
                continue
            if variant.startswith("torch-mix"):
                loss_fn = torch_mixture_loss
                if variant.endswith("compiled"):
                    loss_fn = torch.compile(torch_mixture_loss)
                vae = copy.deepcopy(mixture_template)
                steppers[variant] = torch_stepper(vae, n, 1e-3, loss_fn)
                continue
            cfg.train.jit = variant in ("pyro", "pyro-mix")
            cfg.train.elbo = "compiled" if variant in COMPILED else "trace"
            cfg.train.batch_size = b
            with pyro.get_param_store().scope() as scope:  # each its own parameter names
                trainer = Trainer(
                    copy.deepcopy(mixture_template if "-mix" in variant else template),
                    cfg.train,
                    data,
                    device=device,
                    progress=False,
                    pixels=cfg.data.pixels,
                )
            steppers[variant] = scoped(trainer.step, scope)
        for name, step in steppers.items():  # warm-up (and compilation, both shapes), not timed
            start = time.perf_counter()
            for _ in range(3):
                step(x_all[:b])
            if n % b:
                step(x_all[: n % b])
            print(f"  batch {b} {name}: warm-up (compiling) {time.perf_counter() - start:.1f} s")
        rates: dict[str, list[float]] = {v: [] for v in args.variants}
        ratios: dict[str, list[float]] = {v: [] for v in args.variants}
        for r in range(args.repeats):
            seconds = interleaved_epoch(steppers, x_all, b, args.chunk)
            for variant, s in seconds.items():
                rates[variant].append(n / s)
                mix = ("pyro-mix", "torch-mix-compiled", "pyro-mix-compiled")
                ref = "torch-mix" if variant in mix else "torch"
                ratios[variant].append(seconds[ref] / s if ref in seconds else math.nan)
            line = "  ".join(f"{v} {rates[v][-1]:7.0f}" for v in rates)
            print(f"  batch {b} epoch {r + 1}: {line} images/s")
        for variant in args.variants:
            summary[f"{b}/{variant}"] = {
                "batch_size": b,
                "variant": variant,
                "images_per_second": statistics.median(rates[variant]),
                "ratio": statistics.median(ratios[variant]),
                "all": rates[variant],
            }
    print(f"\n{'batch':>5s}  {'variant':18s} {'images/s (median)':>18s} {'ratio to torch':>15s}")
    print("(ratio: to torch-mix for the other -mix variants, else to torch)")
    for row in summary.values():
        print(
            f"{row['batch_size']:5d}  {row['variant']:18s} {row['images_per_second']:18.0f} "
            f"{row['ratio']:15.3f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            meta = {"threads": torch.get_num_threads(), "device": str(device)}
            json.dump({**meta, "results": list(summary.values())}, f, indent=2)


if __name__ == "__main__":
    main()
