"""Experiment: does a convolutional VAE beat the MLP default on Fashion-MNIST, and at what cost?

Two runs, the same in everything but the networks: today's default (MLP encoder and decoder,
784-400-20, mixture-of-Gaussians prior, grey levels, the JIT ELBO) and the same model with the
convolutional encoder and decoder (``--encoder conv --decoder conv``: two strided 3x3
convolution stages, then the 400-unit layer; :mod:`pyro_vae.model.conv`). Both train for the
same epochs from the same seed and are scored on the same statically binarized test images
with importance-sampled log p(x) (K samples per image, the same seed), so the difference is
paired per image. Seconds per epoch are the runs' own (``metrics.jsonl``'s ``epoch_seconds``,
training only, the median over epochs); on a machine other work shares, the two runs trained at
different times under different loads, so ``--timing`` also times both models' training steps
alternately (``--timing-steps`` steps scaled to an epoch, ``--timing-repeats`` times, medians),
which puts their ratio under the same conditions.

    python experiments/conv_vs_mlp.py [--epochs 10] [--num-samples 1000] [--images N] \\
        [--threads 1] [--timing]

Runs go to ``runs/conv_vs_mlp/E<epochs>/<row>/`` (finished runs reused, unfinished ones
resumed); writes ``table.md`` there.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import pyro
import torch
from common import benchmark_settings, get_args_parser, paired, run_config, slug
from recipes import epoch_seconds

from pyro_vae import Trainer, build_vae, load_dataset
from pyro_vae.app.checkpoint import atomic_write_text
from pyro_vae.app.evaluate import Estimator, evaluate, save_evaluation
from pyro_vae.app.evaluations import find_estimate
from pyro_vae.app.options import positive_int
from pyro_vae.app.vae_build import data_image_shape
from pyro_vae.jobs.run import trained_run
from pyro_vae.store.evaluation import ISEvaluation

ROWS: dict[str, dict] = {
    "MLP default": {},
    "conv": {"guide_kwargs": {"encoder": "conv"}, "decoder": "conv"},
}
"""Each row's model settings, relative to today's defaults."""


@dataclass
class Scored:
    """One row: its evaluation, per-image log p(x), parameter count, median training seconds
    per epoch from its run, and (``--timing``) seconds per epoch timed alternately."""

    evaluation: ISEvaluation
    points: torch.Tensor
    parameters: int
    epoch_seconds: float
    timed: float | None = None


def scored(name: str, args: argparse.Namespace, dataset, root: Path) -> Scored:
    """The row's run trained (or reused) and scored (or read back): its evaluation, per-image
    log p(x), parameters and median training seconds per epoch."""
    cfg = run_config(args, model=ROWS[name], published=False)
    pyro.clear_param_store()
    run, vae, metrics = trained_run(cfg, root, slug(name), dataset, progress=not args.quiet)
    est = Estimator(num_samples=args.num_samples, seed=0, images=args.images)
    wanted = {"dataset": dataset.name, "pixels": cfg.data.pixels, "seed": 0}
    key = f"is-K{args.num_samples}" + (f"-first{args.images}" if args.images else "")
    found = find_estimate(run, key, "test", **wanted)
    if found is None:
        record, estimate = evaluate(vae, cfg, dataset, torch.device("cpu"), estimator=est)
        save_evaluation(run, record, estimate)
        found = find_estimate(run, key, "test", **wanted)
    assert found is not None
    summary, points = found
    assert isinstance(summary, ISEvaluation)
    seconds = [m.epoch_seconds for m in metrics if m.epoch_seconds is not None]
    return Scored(
        evaluation=summary,
        points=points.log_px,
        parameters=sum(p.numel() for p in vae.parameters()),
        epoch_seconds=statistics.median(seconds) if seconds else float("nan"),
    )


def stepper(name: str, args: argparse.Namespace, dataset):
    """One training step of a row's model (fresh weights), its training tensor and batch size;
    warmed up (any JIT compilation done)."""
    cfg = run_config(args, model=ROWS[name], published=False)
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    vae = build_vae(cfg.model, dataset.data_dim, cfg.data.pixels, image_shape=data_image_shape(cfg))
    trainer = Trainer(vae, cfg.train, dataset, pixels=cfg.data.pixels, progress=False)
    x, b = trainer.data.epoch(), cfg.train.batch_size
    for _ in range(3):
        trainer.step(x[:b])
    return trainer.step, x, b


def alternated_timing(names: list[str], args: argparse.Namespace, dataset) -> dict[str, float]:
    """Seconds per epoch of each row, timed alternately with the MLP default (medians; each
    measurement on a model built afresh, as Pyro's parameter store holds one model at a time)."""
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.timing_repeats):
        for name in names:
            seconds[name].append(epoch_seconds(*stepper(name, args, dataset), args.timing_steps))
    return {name: statistics.median(values) for name, values in seconds.items()}


def table(results: dict[str, Scored], args: argparse.Namespace) -> str:
    base = results["MLP default"]
    n = len(base.points)
    lines = [
        f"{args.dataset}, {args.epochs} epochs, seed {args.seed}, {args.threads or 'default'} "
        f"thread(s); test log p(x) with K = {args.num_samples:,} importance samples on the "
        f"same statically binarized first {n:,} test images (nats per image, ± standard error; "
        "Δ paired per image).",
        "",
        "| model | parameters | log p(x) | Δ vs MLP default | s / epoch (run) | × MLP "
        "| s / epoch (alternated) | × MLP |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        ev = r.evaluation
        delta = "—" if r is base else "{:+.2f} ± {:.2f}".format(*paired(r.points, base.points))
        ratio = r.epoch_seconds / base.epoch_seconds
        timed = r.timed
        alternated = f"{timed:.1f} | {timed / base.timed:.2f}" if timed and base.timed else "| "
        lines.append(
            f"| {name} | {r.parameters:,} | {ev.log_px:.2f} ± {ev.log_px_se:.2f} | {delta} | "
            f"{r.epoch_seconds:.1f} | {ratio:.2f} | {alternated} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    shared = get_args_parser(
        runs_dir="runs/conv_vs_mlp",
        dataset="fashion-mnist",
        epochs=10,
        num_samples=1000,
        seed=0,
        threads=None,
    )
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[shared])
    parser.add_argument(
        "--images",
        type=positive_int,
        default=None,
        metavar="N",
        help="score only the first N test images (default: all)",
    )
    parser.add_argument("--rows", nargs="*", choices=list(ROWS), default=list(ROWS))
    parser.add_argument(
        "--timing", action="store_true", help="also time the rows' steps alternately"
    )
    parser.add_argument("--timing-steps", type=int, default=40, help="steps per measurement")
    parser.add_argument("--timing-repeats", type=int, default=3, help="measurements per row")
    args = parser.parse_args()
    benchmark_settings(args)
    root = Path(args.runs_dir) / f"E{args.epochs}"
    root.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset(args.dataset)
    start = time.perf_counter()
    results: dict[str, Scored] = {}
    for name in dict.fromkeys(["MLP default", *args.rows]):  # the baseline first
        print(f"{name} ...", flush=True)
        results[name] = scored(name, args, dataset, root)
        print(f"  log p(x) {results[name].evaluation.log_px:.2f}", flush=True)
    if args.timing:
        for name, seconds in alternated_timing(list(results), args, dataset).items():
            results[name].timed = seconds
    text = table(results, args)
    atomic_write_text(root / "table.md", text)
    minutes = (time.perf_counter() - start) / 60
    print(f"\n{text}\nwritten: {root / 'table.md'} ({minutes:.0f} min)")


if __name__ == "__main__":
    main()
