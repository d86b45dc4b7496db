"""Profile: where does one training step of the default VAE spend its time, Pyro against
plain PyTorch?

The 784-400-20 MLP VAE on Fashion-MNIST batches of 128 (dynamically binarized), one
``Trace_ELBO`` sample, fused Adam. Three ways of taking the same step:

* ``torch``     a plain PyTorch loop over the identical networks and one-sample ELBO;
* ``eager``     pyro-vae's step without the JIT (``--no-jit``);
* ``jit``       pyro-vae's default step (``JitTrace_ELBO``).

Each step is split into its phases (loss = running model and guide and scoring them;
backward; optimizer), each timed with ``time.perf_counter`` over ``--steps`` steps, phases
alternated round-robin ``--repeats`` times (medians). Then ``cProfile`` attributes the eager
step's Python time by where the code lives: the networks (torch.nn), log-densities
(torch/pyro distributions), Pyro's effect handlers and tracing (poutine, primitives, plates),
the ELBO's bookkeeping (pyro.infer), the optimizer (torch.optim), autograd.

    python experiments/profile_training.py [--steps 200] [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import pstats
import statistics
import time
from collections import defaultdict

import pyro
import torch
from bench_training import full_training_set, torch_loss
from common import benchmark_settings, get_args_parser, run_config

from pyro_vae import Trainer, build_vae
from pyro_vae.data.pixels import unit_interval
from pyro_vae.infer.training import make_optimizer


def torch_phases(vae, optimizer, x: torch.Tensor, n: int) -> dict[str, float]:
    """One plain-PyTorch step, its phases timed."""
    t0 = time.perf_counter()
    loss = torch_loss(vae, x, n)
    t1 = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    t2 = time.perf_counter()
    optimizer.step()
    loss.item()
    t3 = time.perf_counter()
    return {"loss": t1 - t0, "backward": t2 - t1, "optimizer": t3 - t2}


def pyro_phases(trainer: Trainer, x: torch.Tensor) -> dict[str, float]:
    """One pyro-vae step (what ``Trainer.step`` does, line by line), its phases timed."""
    t0 = time.perf_counter()
    model, guide, elbo = trainer.objective()
    with pyro.validation_enabled(False), trainer._unregistered():
        loss = elbo.differentiable_loss(model, guide, x, num_data=trainer.num_train)
    if not torch.isfinite(loss):
        raise FloatingPointError("the loss is not finite")
    t1 = time.perf_counter()
    trainer.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    t2 = time.perf_counter()
    trainer._set_lr()
    trainer.optimizer.step()
    loss.item()
    t3 = time.perf_counter()
    return {"loss": t1 - t0, "backward": t2 - t1, "optimizer": t3 - t2}


def _outer_cumtime(stats: pstats.Stats, match) -> float:
    """Seconds spent inside functions that ``match(filename, name)``, counting a call only
    when its caller does not match too (so nested matches are not counted twice)."""
    total = 0.0
    for (filename, _, name), (_, _, _, cumtime, callers) in stats.stats.items():
        if not match(filename, name):
            continue
        inner = sum(c[3] for (cf, _, cn), c in callers.items() if match(cf, cn))
        outer = sum(c[3] for c in callers.values())
        total += cumtime * (1 - inner / outer) if outer else cumtime
    return total


PIECES = [
    ("networks (encoder and decoder MLPs)", lambda f, n: n == "_wrapped_call_impl"),
    ("log-densities (Normal, Bernoulli, .to_event)", lambda f, n: n == "log_prob"),
    ("sampling z (rsample)", lambda f, n: n == "rsample"),
    ("backward (autograd)", lambda f, n: n == "backward" and "torch/_tensor" in f),
    ("optimizer (fused Adam, zero_grad)", lambda f, n: "torch/optim" in f),
]
"""What the eager step is made of, by the functions that do it (cumulative time)."""

PYRO_PARTS = [
    (
        "pyro.module: registering the networks' parameters",
        lambda f, n: n == "module" and "pyro/primitives" in f,
    ),
    (
        "pyro.plate: entering the data plate (subsample indices, scale)",
        lambda f, n: "plate" in n.lower() or "subsample" in f,
    ),
    (
        "pyro.sample: the effect-handler stack",
        lambda f, n: n == "sample" and "pyro/primitives" in f,
    ),
]


def breakdown(stats: pstats.Stats, steps: int, step_seconds: float) -> list[tuple[str, float]]:
    """ms per step of each piece; what is left of the step is Pyro's tracing and Python."""
    rows = [(words, 1000 * _outer_cumtime(stats, m) / steps) for words, m in PIECES]
    rest = 1000 * step_seconds / steps - sum(ms for _, ms in rows)
    rows.append(("the rest: Pyro's tracing, handlers and ELBO bookkeeping, Python", rest))
    rows += [(f"  of which {w}", 1000 * _outer_cumtime(stats, m) / steps) for w, m in PYRO_PARTS]
    return rows


def main() -> None:
    shared = get_args_parser(device="cpu", dataset="fashion-mnist", threads=None)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[shared])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    benchmark_settings(args)
    data = full_training_set(args.dataset)
    b = args.batch_size
    cfg = run_config(
        args,
        model={"hidden": [400], "latent_dim": 20, "prior": "normal"},  # the torch loop's model
        train={"batch_size": b},
        published=False,  # today's default training path
    ).copy()  # varied below: a plain copy of the resolved configuration
    pyro.set_rng_seed(0)
    template = build_vae(cfg.model, data.data_dim, cfg.data.pixels)
    x_all = torch.bernoulli(unit_interval(data.train, data.levels))
    n = len(x_all)
    batches = [x_all[i * b : (i + 1) * b] for i in range(args.steps)]

    plain = copy.deepcopy(template)
    plain_opt = make_optimizer(plain.parameters(), cfg.train.lr)
    trainers = {}
    for name, jit in (("eager", False), ("jit", True)):
        cfg.train.jit = jit
        trainers[name] = Trainer(
            copy.deepcopy(template), cfg.train, data, progress=False, pixels=cfg.data.pixels
        )
        for _ in range(3):
            trainers[name].step(batches[0])
    for _ in range(3):
        torch_phases(plain, plain_opt, batches[0], n)

    runners = {
        "torch": lambda x: torch_phases(plain, plain_opt, x, n),
        "eager": lambda x: pyro_phases(trainers["eager"], x),
        "jit": lambda x: pyro_phases(trainers["jit"], x),
    }
    results: dict[str, list[dict[str, float]]] = {k: [] for k in runners}
    for _ in range(args.repeats):
        for name, run in runners.items():
            sums: dict[str, float] = defaultdict(float)
            for x in batches:
                for phase, seconds in run(x).items():
                    sums[phase] += seconds
            results[name].append({k: 1000 * v / len(batches) for k, v in sums.items()})

    print(
        f"{args.dataset}, batch {b}, 784-400-20 MLP, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, pyro {pyro.__version__}: ms per step, median of "
        f"{args.repeats} x {args.steps} steps"
    )
    print()
    print("| phase | plain PyTorch | pyro-vae, eager | pyro-vae, JIT (default) |")
    print("|---|---|---|---|")
    medians = {
        name: {phase: statistics.median(r[phase] for r in runs) for phase in runs[0]}
        for name, runs in results.items()
    }
    for phase in ("loss", "backward", "optimizer"):
        cells = " | ".join(f"{medians[name][phase]:.2f}" for name in runners)
        print(f"| {phase} | {cells} |")
    totals = {name: sum(m.values()) for name, m in medians.items()}
    print("| **step** | " + " | ".join(f"**{totals[name]:.2f}**" for name in runners) + " |")
    print(
        "| ratio to plain PyTorch (speed) | "
        + " | ".join(f"{totals['torch'] / totals[name]:.3f}" for name in runners)
        + " |"
    )

    profiler = cProfile.Profile()
    trainer = trainers["eager"]
    start = time.perf_counter()
    profiler.enable()
    for x in batches:
        pyro_phases(trainer, x)
    profiler.disable()
    seconds = time.perf_counter() - start
    print()
    print("The eager step under cProfile (which slows Python code down), ms per step:")
    print()
    print("| piece | ms / step |")
    print("|---|---|")
    for words, ms in breakdown(pstats.Stats(profiler), len(batches), seconds):
        print(f"| {words} | {ms:.2f} |")


if __name__ == "__main__":
    main()
