"""Benchmark: which compiled training step? Seconds per step of the same Trace_ELBO step.

The default model (mixture-of-Gaussians prior, diagonal guide, 400 hidden units, 20 latent
dimensions; ``--prior`` to change it) at batch 128, one Adam step on a one-sample ELBO:

* ``eager``     Pyro's ``Trace_ELBO`` (what runs for a user's own parts without ``--jit``);
* ``jit``       the TorchScript JIT (``torch.jit.trace`` through Pyro's ``JitTrace_ELBO``);
* ``compiled``  :class:`pyro_vae.infer.compiled.CompiledTraceELBO`: the loss traced once into a
                pure function of the parameters and the batch, compiled by ``torch.compile``
                (Inductor), forward and backward;
* ``whole``     ``torch.compile`` of ``Trace_ELBO.differentiable_loss`` itself (Pyro's poutines
                break the graph; the breaks are counted by ``torch._dynamo.explain``);
* ``nets``      the encoder's and decoder's networks compiled in place, Pyro's bookkeeping
                eager;
* ``torch``     the hand-written PyTorch loop of ``bench_training.py`` (N(0, I) prior only).

Each variant is built and compiled first (compile seconds: building plus three warm-up
steps, over three eager steps' time); then the variants are interleaved in chunks of
``--chunk`` steps, rotating who goes first, and each variant's median seconds per step over
``--repeats`` rounds is printed with its ratio to eager (and to torch where it runs).

    python experiments/bench_compiled.py --dataset digits --threads 1
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import pyro
import torch
from bench_training import full_training_set, interleaved_epoch, torch_stepper
from common import benchmark_settings, get_args_parser, run_config
from pyro.infer import Trace_ELBO

from pyro_vae import build_vae
from pyro_vae.data.pixels import unit_interval
from pyro_vae.infer.compiled import CompiledTraceELBO
from pyro_vae.infer.objectives import JitTraceELBO
from pyro_vae.infer.training import make_optimizer

VARIANTS = ("eager", "jit", "compiled", "whole", "nets", "torch")


def pyro_stepper(vae, variant: str, n: int, lr: float) -> Callable[[torch.Tensor], float]:
    """The trainer's step (loss, zero_grad, backward, Adam, ``.item()``) with ``variant``'s
    objective on ``vae``'s model and guide (kept, so that JIT caches find them)."""
    optimizer = make_optimizer(vae.parameters(), lr)
    vae.register_parameters = variant == "jit"  # only the TorchScript JIT reads Pyro's store
    model, guide = vae.model, vae.guide
    if variant == "jit":
        elbo = JitTraceELBO(ignore_jit_warnings=True, max_plate_nesting=1)
    elif variant == "compiled":
        elbo = CompiledTraceELBO(max_plate_nesting=1)
    else:
        elbo = Trace_ELBO(max_plate_nesting=1)
    loss_fn = elbo.differentiable_loss
    if variant == "whole":
        loss_fn = torch.compile(loss_fn)
    if variant == "nets":
        vae.encoder.net.compile()
        vae.decoder.compile()

    def step(x: torch.Tensor) -> float:
        with pyro.validation_enabled(False):
            loss = loss_fn(model, guide, x, num_data=n)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def graph_breaks(vae, x: torch.Tensor, n: int) -> str:
    """How ``torch._dynamo.explain`` sees ``Trace_ELBO`` compiled whole."""
    model, guide, elbo = vae.model, vae.guide, Trace_ELBO(max_plate_nesting=1)
    vae.register_parameters = False
    with pyro.validation_enabled(False):
        explained = torch._dynamo.explain(elbo.differentiable_loss)(model, guide, x, num_data=n)
    return f"{explained.graph_count} graphs, {explained.graph_break_count} graph breaks"


def main() -> None:
    shared = get_args_parser(device="cpu", dataset="digits", threads=None)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[shared])
    parser.add_argument("--prior", default="mog", help="the model's prior (default: mog)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50, help="timed steps per round")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=10, help="steps per interleaved chunk")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS[:3]))
    args = parser.parse_args()
    benchmark_settings(args)
    data = full_training_set(args.dataset)
    cfg = run_config(args, model={"prior": args.prior}, published=False)
    pyro.set_rng_seed(0)
    template = build_vae(cfg.model, data.data_dim, cfg.data.pixels)
    x_all = torch.bernoulli(unit_interval(data.train, data.levels))
    n, b = len(x_all), args.batch_size
    print(
        f"{args.dataset}: {n} images, prior {args.prior}, batch {b}, {torch.get_num_threads()} "
        f"threads, torch {torch.__version__}, pyro {pyro.__version__}"
    )
    if "whole" in args.variants:
        print(f"whole: Trace_ELBO under torch.compile: {graph_breaks(template, x_all[:b], n)}")
    pyro.clear_param_store()  # only the JIT's model registers its parameters there
    steppers, compile_seconds = {}, {}
    for variant in args.variants:
        if variant == "torch":
            if args.prior != "normal":
                continue
            steppers[variant] = torch_stepper(copy.deepcopy(template), n, 1e-3)
        else:
            steppers[variant] = pyro_stepper(copy.deepcopy(template), variant, n, 1e-3)
        start = time.perf_counter()
        for _ in range(3):
            steppers[variant](x_all[:b])
        compile_seconds[variant] = time.perf_counter() - start
    per_step: dict[str, list[float]] = {v: [] for v in steppers}
    for _ in range(args.repeats):
        x = x_all[torch.randint(n, (args.steps * b,))]
        seconds = interleaved_epoch(steppers, x, b, args.chunk)
        for variant, s in seconds.items():
            per_step[variant].append(s / args.steps)
    ms = {v: 1000 * statistics.median(s) for v, s in per_step.items()}
    first = {v: compile_seconds[v] - 3 * ms[v] / 1000 for v in steppers}
    print(
        f"\n{'variant':9s} {'ms/step':>8s} {'images/s':>9s} {'vs eager':>9s} {'vs torch':>9s} "
        f"{'compile s':>10s}"
    )
    for v in steppers:
        vs_torch = f"{ms['torch'] / ms[v]:9.2f}" if "torch" in ms else f"{'':9s}"
        print(
            f"{v:9s} {ms[v]:8.2f} {1000 * b / ms[v]:9.0f} {ms['eager'] / ms[v]:9.2f} {vs_torch} "
            f"{first[v]:10.1f}"
        )


if __name__ == "__main__":
    main()
