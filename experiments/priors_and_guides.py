"""Experiment: which prior, guide and objective give the best test log p(x)?

A grid of prior x guide trained with the ELBO, the diagonal guide with the standard and the
VampPrior also with the IWAE bound (K = 5 guide samples per example and step),
and the recipe of most tutorials (Pyro's VAE tutorial: 784-400-50 softplus MLP, Bernoulli
likelihood on grey levels in [0, 1], batch 256, Adam 1e-3) as a reference row, all for the
same number of epochs on binarized Fashion-MNIST and all scored on the same statically
binarized test set by importance-sampled log p(x) (K samples per image). Each row reports
log p(x) with its standard error, the difference to the baseline (standard normal prior,
diagonal guide, ELBO) with the standard error of that paired difference, the ELBO, the
number of parameters and the training time.

    python experiments/priors_and_guides.py [--epochs 10] [--num-samples 1000]

Runs go to ``runs/priors_and_guides/<row>/`` (one pyro-vae run directory each); a row whose
run directory already holds its evaluation is not recomputed, so the script can be stopped and
resumed. The table is printed and written to ``runs/priors_and_guides/table.md``.

Left out: the VampPrior with the IAF guide. The VampPrior evaluates the guide's density at
every sample for every pseudo-input, and an IAF's density at a point it did not generate
needs the flow's inverse, sequential in the latent dimension: about 75 s per epoch and an hour
per evaluation on 2 CPU cores. (The library now refuses the pair up front:
``experiments/bench_grid.py`` and :class:`pyro_vae.model.priors.VampPrior`.)
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyro
from common import Scored, evaluated_run, get_args_parser, paired, run_config, slug

from pyro_vae import RunConfig, Trainer, build_vae, load_dataset
from pyro_vae.app.evaluations import per_image_log_px


@dataclass
class Row:
    name: str
    prior: str = "normal"
    guide: str = "diagonal"
    elbo: str = "trace"
    particles: int = 1
    model: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)


BASELINE = "normal / diagonal / ELBO"
ROWS = [
    Row(BASELINE),
    Row("normal / full / ELBO", guide="full"),
    Row("normal / flow / ELBO", guide="flow"),
    Row("learned / diagonal / ELBO", prior="learned"),
    Row("learned / full / ELBO", prior="learned", guide="full"),
    Row("learned / flow / ELBO", prior="learned", guide="flow"),
    Row("mog / diagonal / ELBO", prior="mog"),
    Row("mog / full / ELBO", prior="mog", guide="full"),
    Row("mog / flow / ELBO", prior="mog", guide="flow"),
    Row("vamp / diagonal / ELBO", prior="vamp"),
    Row("vamp / full / ELBO", prior="vamp", guide="full"),
    Row("normal / diagonal / IWAE-5", elbo="iwae", particles=5),
    Row("vamp / diagonal / IWAE-5", prior="vamp", elbo="iwae", particles=5),
    Row(
        "tutorial recipe (784-400-50, grey levels, batch 256)",
        model={"latent_dim": 50, "activation": "softplus"},
        data={"pixels": "grey"},
        train={"batch_size": 256},
    ),
]


def config_for(row: Row, args: argparse.Namespace) -> RunConfig:
    return run_config(
        args,
        model={"prior": row.prior, "guide": row.guide, **row.model},
        data=row.data,
        train={"elbo": row.elbo, "particles": row.particles, **row.train},
    )


def run_row(row: Row, args: argparse.Namespace, dataset, root: Path) -> Scored:
    """The row's run trained (or reused) and its log p(x) evaluated (or read back)."""
    cfg = config_for(row, args)
    scored, _, _ = evaluated_run(
        cfg, root, row.name, dataset, args.num_samples, args.quiet, extra={"epochs": args.epochs}
    )
    return scored


def time_rows(rows: list[Row], args: argparse.Namespace, dataset, root: Path) -> dict:
    """Seconds per training epoch of each row, each measured alone (one fresh epoch after a
    warm-up of a few steps), so that the column does not depend on what else shared the CPU
    while the grid trained. Saved in ``timing.json``."""
    timings = {}
    for row in rows:
        cfg = config_for(row, args)
        pyro.set_rng_seed(0)
        vae = build_vae(cfg.model, dataset.data_dim, cfg.data.pixels)
        trainer = Trainer(vae, cfg.train, dataset, pixels=cfg.data.pixels, progress=False)
        x = trainer.data.epoch()[: cfg.train.batch_size]
        for _ in range(3):
            trainer.step(x)
        start = time.perf_counter()
        trainer.train_epoch()
        timings[row.name] = time.perf_counter() - start
        print(f"  {row.name}: {timings[row.name]:.1f} s per epoch", flush=True)
    (root / "timing.json").write_text(json.dumps(timings, indent=2) + "\n")
    return timings


def paired_difference(path: Path, baseline: Path, num_samples: int) -> tuple[float, float]:
    """Mean and standard error of the per-image difference in log p(x) to the baseline."""
    key = f"is-K{num_samples}"
    return paired(per_image_log_px(path, key), per_image_log_px(baseline, key))


def table(results: list[Scored], root: Path, args: argparse.Namespace) -> str:
    base = root / slug(BASELINE)
    timing_file = root / "timing.json"
    timings = json.loads(timing_file.read_text()) if timing_file.is_file() else {}
    lines = [
        f"Binarized {args.dataset}, {args.epochs} epochs each, test log p(x) with "
        f"K = {args.num_samples} importance samples per image on all "
        f"{results[0].evaluation.num_examples} test images (nats per image; ± standard error).",
        "",
        "| prior / guide / objective | log p(x) | Δ vs baseline (paired) | ELBO | k̂ > 0.7 "
        "| parameters | s / epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        path = root / slug(r.name)
        if r.name == BASELINE:
            delta = "—"
        else:
            d, se = paired_difference(path, base, args.num_samples)
            delta = f"{d:+.2f} ± {se:.2f}"
        ev = r.evaluation
        lines.append(
            f"| {r.name} | {ev.log_px:.2f} ± {ev.log_px_se:.2f} | {delta} | "
            f"{ev.elbo:.2f} | {ev.khat_above} | {r.parameters:,} | "
            f"{_seconds(timings.get(r.name), r, args)} |"
        )
    return "\n".join(lines) + "\n"


def _seconds(measured: float | None, result: Scored, args: argparse.Namespace) -> str:
    if measured is not None:
        return f"{measured:.1f}"
    return f"{result.train_seconds / args.epochs:.1f}*"


def main() -> None:
    shared = get_args_parser(
        runs_dir="runs/priors_and_guides",
        dataset="fashion-mnist",
        epochs=10,
        num_samples=1000,
        seed=0,
    )
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[shared])
    parser.add_argument("--rows", nargs="*", default=None, help="only rows whose name has these")
    parser.add_argument(
        "--timing",
        action="store_true",
        help="also time one epoch of each row alone (timing.json) for the table's s/epoch",
    )
    args = parser.parse_args()

    root = Path(args.runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset(args.dataset)
    rows = [r for r in ROWS if not args.rows or any(s in r.name for s in args.rows)]
    if not any(r.name == BASELINE for r in rows):
        rows.insert(0, ROWS[0])
    results = []
    start = time.perf_counter()
    for i, row in enumerate(rows, 1):
        print(f"[{i}/{len(rows)}] {row.name}", flush=True)
        pyro.clear_param_store()
        results.append(run_row(row, args, dataset, root))
        r, ev = results[-1], results[-1].evaluation
        print(
            f"  log p(x) {ev.log_px:.2f} ± {ev.log_px_se:.2f}, ELBO {ev.elbo:.2f}, "
            f"k-hat > 0.7: {ev.khat_above}, {r.train_seconds:.0f} s training",
            flush=True,
        )
    if args.timing:
        print("timing one epoch of each row, alone:", flush=True)
        time_rows(rows, args, dataset, root)
    text = table(results, root, args)
    if not (root / "timing.json").is_file():
        text += (
            "\n\\* seconds per epoch while the grid trained, with other work sharing the "
            "CPU; run with --timing for times measured alone.\n"
        )
    (root / "table.md").write_text(text)
    print(f"\n{text}\nwritten: {root / 'table.md'} ({(time.perf_counter() - start) / 60:.0f} min)")


if __name__ == "__main__":
    main()
