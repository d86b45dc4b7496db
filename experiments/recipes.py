"""Experiment: which levers beat the PyTorch examples' VAE, by how much, at what cost?

Every row is a pyro-vae run on Fashion-MNIST, scored like the reference
(``experiments/reference_vae.py``: the PyTorch examples' 784-400-20 VAE trained on grey levels
with binary cross-entropy) on one statically binarized copy of the 10,000 test images, with
importance-sampled log p(x) (K samples per image, the same seed). Because every model is scored
on the same images, the differences are paired per image: the standard error of a difference
is far smaller than that of either number.

The rows form a chain from the library's former default (784-400-20 ReLU, dynamic
binarization, Adam 10^-3, batch 128) to the recommended recipe: each row adds one lever to the
row it names as its parent, and the table shows what that lever bought (paired, against the
parent) and what it costs (training seconds per epoch, measured alone with ``--timing``).
Each row names the training lengths the README's tables show it at (``Row.epochs``).

    python experiments/recipes.py [--epochs 10] [--num-samples 1000] [--timing]
    python experiments/recipes.py --epochs 50 [--timing]

Runs go to ``runs/recipes/E<epochs>/<row>/``, the reference to
``runs/recipes/E<epochs>/reference/``; finished rows are reused, unfinished ones resumed.
Writes ``table.md`` there.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pyro
import torch
from common import Scored, evaluated_run, get_args_parser, paired, run_config, slug
from reference_vae import ReferenceEvaluation, ReferenceVAE, reference_run

from pyro_vae import Trainer, build_vae, load_dataset
from pyro_vae.app.checkpoint import atomic_write_text
from pyro_vae.app.evaluations import per_image_log_px
from pyro_vae.config import preset_sections
from pyro_vae.data.pixels import unit_interval
from pyro_vae.store.fields import Record, number

REFERENCE = "reference"


@dataclass
class Row:
    name: str
    parent: str | None
    lever: str
    model: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    epochs: tuple[int, ...] = (10,)
    """The training lengths at which the README's tables measure this row."""


NORMAL = {"prior": "normal"}
EAGER_1E3 = {"lr": 1e-3, "jit": False}
QUALITY_PRESET = preset_sections("quality")
"""Today's quality preset (``pyro-vae --preset quality``, declared in :mod:`pyro_vae.config`) by
section: the row "quality, gated" (a test checks that they agree)."""
VAMP = {"prior": "vamp"}
"""The model of the chain's last row "quality" (the preset before gated layers joined it in
0.4): the VampPrior, ReLU layers."""
IWAE_5 = {"elbo": "iwae", "particles": 5}
QUALITY = {"elbo": "iwae", "particles": 5, "lr": 3e-3, "lr_schedule": "cosine"}
"""The row "quality"'s training settings (IWAE-5, cosine-decayed learning rate), which the
preset keeps."""
QUALITY_DATA = {"pixels": "grey"}
"""The row "quality"'s pixels (grey levels, also today's default)."""
DYNAMIC = {"pixels": "dynamic"}
BEST_50 = "quality, dynamic, IWAE-10, 500 pseudo-inputs"
"""The best 50-epoch row, which the last levers are tried on (the README's 50-epoch command)."""
VAMP_500 = {**VAMP, "prior_kwargs": {"pseudo_inputs": 500}}
QUALITY_10 = {**QUALITY, "particles": 10}
HIERARCHICAL = {"prior": "hierarchical-vamp", "guide": "top-down", "latent_dim": 40}
"""Tomczak & Welling's hierarchical VampPrior VAE: z2 (20) -> z1 (20), the decoder on both."""

ROWS: list[Row] = [
    Row(
        "0.2 default",
        REFERENCE,
        "pyro-vae 0.2's default: N(0, I) prior, dynamic binarization, lr 1e-3, eager ELBO",
        model=NORMAL,
        data={"pixels": "dynamic"},
        train=EAGER_1E3,
    ),
    Row(
        "grey levels",
        "0.2 default",
        "expected Bernoulli likelihood of the grey levels",
        model=NORMAL,
        data={"pixels": "grey"},
        train=EAGER_1E3,
    ),
    Row(
        "lr 3e-3", "grey levels", "Adam learning rate 3e-3 (and the JIT: speed only)", model=NORMAL
    ),
    Row("default", "lr 3e-3", "mixture of 10 Gaussians as p(z): today's default"),
    Row("VampPrior", "default", "VampPrior (100 pseudo-inputs) instead", model=VAMP),
    Row("IWAE-5", "VampPrior", "IWAE bound with K = 5 samples", model=VAMP, train=IWAE_5),
    Row(
        "quality",
        "IWAE-5",
        "cosine-decayed learning rate: the quality preset of 0.3",
        model=VAMP,
        data=QUALITY_DATA,
        train=QUALITY,
        epochs=(10, 50),
    ),
    Row(
        "quality, gated",
        "quality",
        "gated hidden layers (h = a * sigmoid(b), Tomczak & Welling's): today's quality preset",
        model=QUALITY_PRESET["model"],
        data=QUALITY_PRESET["data"],
        train=QUALITY_PRESET["train"],
        epochs=(10,),
    ),
    # levers on top of the quality preset of 0.3
    Row(
        "quality, DReG",
        "quality",
        "doubly reparameterized guide gradients (DReG) for the IWAE bound",
        model=VAMP,
        data=QUALITY_DATA,
        train={**QUALITY, "elbo": "iwae-dreg"},
    ),
    Row(
        "quality, hierarchical",
        "quality",
        "hierarchical VampPrior VAE, top-down inference, decoder on both layers (20 + 20)",
        model=HIERARCHICAL,
        data=QUALITY_DATA,
        train=QUALITY,
    ),
    Row(
        "quality, hierarchical 10 + 10",
        "quality, hierarchical",
        "layers of 10 and 10 dimensions instead of 20 and 20",
        model={**HIERARCHICAL, "latent_dim": 20},
        data=QUALITY_DATA,
        train=QUALITY,
    ),
    Row(
        "quality, 512-512",
        "quality",
        "two hidden layers of 512 (mirrored), Adam 1e-3",
        model={**VAMP, "hidden": [512, 512]},
        data=QUALITY_DATA,
        train={**QUALITY, "lr": 1e-3},
        epochs=(10, 50),
    ),
    Row(
        "quality, latent 40",
        "quality",
        "40 latent dimensions instead of 20",
        model={**VAMP, "latent_dim": 40},
        data=QUALITY_DATA,
        train=QUALITY,
        epochs=(50,),
    ),
    Row(
        "quality, dynamic",
        "quality",
        "dynamic binarization instead of the grey levels",
        model=VAMP,
        data=DYNAMIC,
        train=QUALITY,
        epochs=(10, 50),
    ),
    Row(
        "quality, dynamic, IWAE-10",
        "quality, dynamic",
        "IWAE bound with K = 10 samples instead of 5",
        model=VAMP,
        data=DYNAMIC,
        train=QUALITY_10,
        epochs=(50,),
    ),
    Row(
        "quality, dynamic, IWAE-20",
        "quality, dynamic, IWAE-10",
        "IWAE bound with K = 20 samples instead of 10",
        model=VAMP,
        data=DYNAMIC,
        train={**QUALITY, "particles": 20},
        epochs=(50,),
    ),
    Row(
        BEST_50,
        "quality, dynamic, IWAE-10",
        "500 pseudo-inputs in the VampPrior instead of 100",
        model=VAMP_500,
        data=DYNAMIC,
        train=QUALITY_10,
        epochs=(50,),
    ),
    Row(
        BEST_50 + ", batch 64",
        BEST_50,
        "batches of 64 instead of 128 (twice the updates)",
        model=VAMP_500,
        data=DYNAMIC,
        train={**QUALITY_10, "batch_size": 64},
        epochs=(50,),
    ),
    Row(
        BEST_50 + ", lr 1.5e-3",
        BEST_50,
        "Adam learning rate 1.5e-3 instead of 3e-3 (cosine-decayed)",
        model=VAMP_500,
        data=DYNAMIC,
        train={**QUALITY_10, "lr": 1.5e-3},
        epochs=(50,),
    ),
    Row(
        BEST_50 + ", lr 1e-3",
        BEST_50 + ", lr 1.5e-3",
        "Adam learning rate 1e-3 instead of 1.5e-3 (cosine-decayed)",
        model=VAMP_500,
        data=DYNAMIC,
        train={**QUALITY_10, "lr": 1e-3},
        epochs=(50,),
    ),
    Row(
        BEST_50 + ", lr 5e-3",
        BEST_50,
        "Adam learning rate 5e-3 instead of 3e-3 (cosine-decayed)",
        model=VAMP_500,
        data=DYNAMIC,
        train={**QUALITY_10, "lr": 5e-3},
        epochs=(50,),
    ),
    Row(
        "quality, dynamic, IWAE-10, 1000 pseudo-inputs",
        BEST_50,
        "1000 pseudo-inputs in the VampPrior instead of 500",
        model={**VAMP, "prior_kwargs": {"pseudo_inputs": 1000}},
        data=DYNAMIC,
        train=QUALITY_10,
        epochs=(50,),
    ),
    Row(
        BEST_50 + ", two layers",
        BEST_50,
        "hierarchical VampPrior: z2 -> z -> x, VampPrior over z2",
        model={"prior": "two-layer-vamp", "prior_kwargs": {"pseudo_inputs": 500}},
        data=DYNAMIC,
        train=QUALITY_10,
        epochs=(50,),
    ),
    Row(
        BEST_50 + ", DReG",
        BEST_50,
        "doubly reparameterized guide gradients (DReG) for the IWAE bound",
        model=VAMP_500,
        data=DYNAMIC,
        train={**QUALITY_10, "elbo": "iwae-dreg"},
        epochs=(50,),
    ),
    Row(
        BEST_50 + ", DReG, IWAE-20",
        BEST_50 + ", DReG",
        "IWAE bound with K = 20 samples instead of 10 (DReG)",
        model=VAMP_500,
        data=DYNAMIC,
        train={**QUALITY_10, "elbo": "iwae-dreg", "particles": 20},
        epochs=(50,),
    ),
    Row(
        BEST_50 + ", DReG, IWAE-20, gated",
        BEST_50 + ", DReG, IWAE-20",
        "gated hidden layers (h = a * sigmoid(b)) instead of ReLU",
        model={**VAMP_500, "activation": "gated"},
        data=DYNAMIC,
        train={**QUALITY_10, "elbo": "iwae-dreg", "particles": 20},
        epochs=(50,),
    ),
    # single levers
    Row(
        "cosine, N(0, I)",
        "lr 3e-3",
        "cosine-decayed learning rate",
        model=NORMAL,
        train={"lr_schedule": "cosine"},
    ),
    Row("cosine", "default", "cosine-decayed learning rate", train={"lr_schedule": "cosine"}),
    Row("KL warm-up", "default", "KL weight rising over 3 epochs", train={"kl_warmup": 3}),
    Row(
        "wider, deeper",
        "default",
        "hidden layers 512, 256 (mirrored)",
        model={"hidden": [512, 256]},
    ),
    Row(
        "two layers",
        "default",
        "two stochastic layers z2 -> z -> x instead of the mixture",
        model={"prior": "two-layer"},
    ),
]
"""The chain from pyro-vae 0.2's default to the quality preset (each row adds one lever to its
parent, on Fashion-MNIST), then single levers on top of a row of the chain. Settings are
relative to today's defaults (``published=False``)."""


def at_length(epochs: int) -> list[Row]:
    """The rows the README's table for this training length shows (all rows, for a length it
    has no table for)."""
    rows = [r for r in ROWS if epochs in r.epochs]
    return rows or list(ROWS)


def config_for(row: Row, args: argparse.Namespace):
    return run_config(args, model=row.model, data=row.data, train=row.train, published=False)


def run_row(row: Row, args: argparse.Namespace, dataset, root: Path) -> Scored:
    """The row's run trained (or reused) and its log p(x) evaluated (or read back)."""
    cfg = config_for(row, args)
    return evaluated_run(cfg, root, row.name, dataset, args.num_samples, args.quiet)[0]


def points(name: str, root: Path, num_samples: int) -> torch.Tensor:
    """Per-image log p(x) of a row (or of the reference) on the test tensor."""
    path = root / (REFERENCE if name == REFERENCE else slug(name))
    return per_image_log_px(path, f"is-K{num_samples}")  # the reference's: its flat file


def stepper(row: Row | None, args: argparse.Namespace, dataset):
    """One training step of a row (``None``: the reference), and its training tensor and
    batch size; warmed up (any JIT compilation done)."""
    torch.manual_seed(0)
    if row is None:
        vae = ReferenceVAE(dataset.data_dim)
        x = unit_interval(dataset.train, dataset.levels)
        optimizer = torch.optim.Adam(vae.parameters(), lr=1e-3)

        def step(batch: torch.Tensor) -> None:
            loss = vae.loss(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()

        b = 128
    else:
        cfg = config_for(row, args)
        pyro.set_rng_seed(0)
        vae = build_vae(cfg.model, dataset.data_dim, cfg.data.pixels)
        trainer = Trainer(vae, cfg.train, dataset, pixels=cfg.data.pixels, progress=False)
        x = trainer.data.epoch()
        b = cfg.train.batch_size
        step = trainer.step
    for _ in range(3):
        step(x[:b])
    return step, x, b


def epoch_seconds(step, x: torch.Tensor, b: int, steps: int) -> float:
    """Seconds of ``steps`` training steps on random minibatches, scaled to one epoch."""
    perm = torch.randperm(len(x))[: steps * b]
    start = time.perf_counter()
    for idx in perm.split(b):
        step(x[idx])
    return (time.perf_counter() - start) * math.ceil(len(x) / b) / steps


def time_rows(rows: list[Row], args: argparse.Namespace, dataset, root: Path) -> dict:
    """Training seconds per epoch of each row and its ratio to the reference's, measured alone
    (no validation pass): ``--timing-steps`` steps scaled to an epoch, alternated with the
    reference ``--timing-repeats`` times (medians), so that the ratio compares numbers taken
    under the same conditions on a machine whose speed drifts. Saved in ``timing.json``, which
    keeps the rows timed before and not timed again."""
    ref = stepper(None, args, dataset)
    timings = read_timings(root)
    for row in [None, *rows]:
        mine = ref if row is None else stepper(row, args, dataset)
        pairs = [
            (epoch_seconds(*mine, args.timing_steps), epoch_seconds(*ref, args.timing_steps))
            for _ in range(args.timing_repeats)
        ]
        name = REFERENCE if row is None else row.name
        seconds = statistics.median(p[0] for p in pairs)
        ratio = statistics.median(p[0] / p[1] for p in pairs)
        timings[name] = Timing(seconds=seconds, ratio=ratio)
        print(f"  {name}: {seconds:.2f} s per epoch, {ratio:.2f} x the reference", flush=True)
    text = json.dumps({k: t.to_json() for k, t in timings.items()}, indent=2)
    atomic_write_text(root / "timing.json", text + "\n")
    return timings


@dataclass(frozen=True, kw_only=True)
class Timing(Record):
    """A row's training seconds per epoch, measured alone, and their ratio to the reference's."""

    WHAT: ClassVar[str] = "a timing"

    seconds: float = number()
    ratio: float = number()


def read_timings(root: Path) -> dict[str, Timing]:
    """``timing.json`` of a table's directory (empty before any row was timed)."""
    path = root / "timing.json"
    saved = json.loads(path.read_text()) if path.is_file() else {}
    return {name: Timing.from_json(entry) for name, entry in saved.items()}


def table(
    rows: list[Row], ref: ReferenceEvaluation, results: dict[str, Scored], root: Path, args
) -> str:
    timings = read_timings(root)
    ref_points = points(REFERENCE, root, args.num_samples)
    lines = [
        f"Fashion-MNIST, {args.epochs} epochs, seed {args.seed}; test log p(x) with "
        f"K = {args.num_samples} importance samples on the same statically binarized "
        f"{ref.num_examples:,} test images (nats per image, ± standard error; Δ paired "
        "per image).",
        "",
        "| row | lever | log p(x) | Δ vs reference | Δ vs parent (the lever) | s / epoch "
        "| × reference |",
        "|---|---|---|---|---|---|---|",
    ]
    lines.append(
        f"| reference | PyTorch examples' VAE (plain PyTorch) | {ref.log_px:.2f} ± "
        f"{ref.log_px_se:.2f} | — | — | {_fmt(timings.get(REFERENCE))} | 1.00 |"
    )
    for row in rows:
        r = results[row.name].evaluation
        mine = points(row.name, root, args.num_samples)
        d_ref = "{:+.2f} ± {:.2f}".format(*paired(mine, ref_points))
        d_parent = "—"
        if row.parent is not None and row.parent != REFERENCE and row.parent in results:
            d_parent = "{:+.2f} ± {:.2f}".format(
                *paired(mine, points(row.parent, root, args.num_samples))
            )
        timing = timings.get(row.name)
        ratio = f"{timing.ratio:.2f}" if timing else ""
        lines.append(
            f"| {row.name} | {row.lever} | {r.log_px:.2f} ± {r.log_px_se:.2f} | "
            f"{d_ref} | {d_parent} | {_fmt(timing)} | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def _fmt(timing: Timing | None) -> str:
    return f"{timing.seconds:.2f}" if timing else ""


def main() -> None:
    shared = get_args_parser(
        runs_dir="runs/recipes", dataset="fashion-mnist", epochs=10, num_samples=1000, seed=0
    )
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[shared])
    parser.add_argument(
        "--rows",
        nargs="*",
        default=None,
        help="only rows with these names (default: the rows the README shows at --epochs)",
    )
    parser.add_argument(
        "--timing", action="store_true", help="time each row's training alone (timing.json)"
    )
    parser.add_argument("--timing-steps", type=int, default=150, help="steps per measurement")
    parser.add_argument("--timing-repeats", type=int, default=3, help="measurements per row")
    args = parser.parse_args()
    root = Path(args.runs_dir) / f"E{args.epochs}"
    root.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset(args.dataset)
    rows = [r for r in ROWS if r.name in args.rows] if args.rows else at_length(args.epochs)
    start = time.perf_counter()
    ref = reference_run(dataset, root / REFERENCE, args.epochs, args.num_samples, args.seed)
    results: dict[str, Scored] = {}
    print(f"reference: log p(x) {ref.log_px:.2f}", flush=True)
    for i, row in enumerate(rows, 1):
        print(f"[{i}/{len(rows)}] {row.name}", flush=True)
        pyro.clear_param_store()
        results[row.name] = run_row(row, args, dataset, root)
        print(f"  log p(x) {results[row.name].evaluation.log_px:.2f}", flush=True)
    if args.timing:
        time_rows(rows, args, dataset, root)
    text = table(rows, ref, results, root, args)
    atomic_write_text(root / "table.md", text)
    print(f"\n{text}\nwritten: {root / 'table.md'} ({(time.perf_counter() - start) / 60:.0f} min)")


if __name__ == "__main__":
    main()
