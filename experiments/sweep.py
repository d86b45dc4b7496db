"""Experiment: a hyper-parameter sweep, latent size x hidden width x learning rate.

A small grid that fits on two CPU cores (on ``digits`` by default): every configuration is
trained for the same epochs, chosen by its *validation* log p(x) (importance sampling), and
reported with its *test* log p(x), so the choice does not peek at the test set.

    python experiments/sweep.py [--dataset digits] [--epochs 300]

Writes ``runs/sweep/sweep.md`` (sorted by validation log p(x), best named) and
``runs/sweep/sweep.png``; each configuration is a run directory under ``runs/sweep/``.
"""

from __future__ import annotations

import argparse
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from common import evaluation, get_args_parser, run_config  # noqa: E402

from pyro_vae import load_dataset  # noqa: E402
from pyro_vae.jobs.run import trained_run
from pyro_vae.store.evaluation import ISEvaluation  # noqa: E402


@dataclass(frozen=True)
class Configuration:
    """One configuration of the grid, its validation and test evaluations, training seconds
    and parameter count."""

    name: str
    latent: int
    hidden: int
    lr: float
    val: ISEvaluation
    test: ISEvaluation
    seconds: float | None
    parameters: int


def main() -> None:
    shared = get_args_parser(
        runs_dir="runs/sweep", dataset="digits", latents=[5, 20], epochs=300, num_samples=1000
    )
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[shared])
    parser.add_argument("--hidden", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--lrs", type=float, nargs="+", default=[3e-4, 1e-3, 3e-3])
    args = parser.parse_args()
    dataset = load_dataset(args.dataset, download=False)
    root = Path(args.runs_dir)
    results = []
    for latent, hidden, lr in itertools.product(args.latents, args.hidden, args.lrs):
        cfg = run_config(
            args, dataset.name, model={"latent_dim": latent, "hidden": [hidden]}, train={"lr": lr}
        )
        name = f"z{latent}-h{hidden}-lr{lr:g}"
        run, vae, metrics = trained_run(cfg, root, name, dataset, progress=not args.quiet)
        val, test = (  # evaluation_val.json, evaluation.json
            evaluation(run, vae, cfg, dataset, args.num_samples, split=split)[0]
            for split in ("val", "test")
        )
        results.append(
            Configuration(
                name=name,
                latent=latent,
                hidden=hidden,
                lr=lr,
                val=val,
                test=test,
                seconds=metrics[-1].wall_seconds,
                parameters=sum(p.numel() for p in vae.parameters()),
            )
        )
        print(f"{name}: validation {val.log_px:.3f}, test {test.log_px:.3f}", flush=True)
    results.sort(key=lambda r: r.val.log_px, reverse=True)
    best = results[0]
    lines = [
        f"{dataset.name}, {args.epochs} epochs per configuration; log p(x) by importance "
        f"sampling (K = {args.num_samples}), nats per image ± standard error over images; "
        "sorted by validation log p(x), which picks the best.",
        "",
        "| latent | hidden | lr | validation log p(x) | test log p(x) | test k̂ > 0.7 | "
        "parameters | training |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        mark = " **best**" if r is best else ""
        lines.append(
            f"| {r.latent} | {r.hidden} | {r.lr:g}{mark} | "
            f"{r.val.log_px:.3f} ± {r.val.log_px_se:.3f} | "
            f"{r.test.log_px:.3f} ± {r.test.log_px_se:.3f} | "
            f"{r.test.khat_above} | {r.parameters:,} | {r.seconds:.0f} s |"
        )
    lines += [
        "",
        f"Best configuration: latent {best.latent}, hidden {best.hidden}, "
        f"learning rate {best.lr:g} (test log p(x) {best.test.log_px:.3f} ± "
        f"{best.test.log_px_se:.3f}).",
    ]
    (root / "sweep.md").write_text("\n".join(lines) + "\n")

    fig, axes = plt.subplots(
        1, len(args.latents), figsize=(5.0 * len(args.latents), 3.8), squeeze=False, sharey=True
    )
    for ax, latent in zip(axes[0], args.latents, strict=True):
        for k, hidden in enumerate(args.hidden):
            rows = sorted(
                (r for r in results if r.latent == latent and r.hidden == hidden),
                key=lambda r: r.lr,
            )
            ax.errorbar(
                [r.lr for r in rows],
                [r.test.log_px for r in rows],
                yerr=[2 * r.test.log_px_se for r in rows],
                marker="o",
                capsize=3,
                color=f"C{k}",
                label=f"hidden {hidden}",
            )
        ax.set_xscale("log")
        ax.set_xticks(sorted(args.lrs), [f"{lr:g}" for lr in sorted(args.lrs)])
        ax.minorticks_off()
        ax.set_xlabel("learning rate")
        ax.set_title(f"latent {latent}")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("test log p(x), nats per image\n(± 2 s.e. over images)")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"{dataset.name}: test log p(x) over the sweep ({args.epochs} epochs)")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(root / "sweep.png", dpi=120)
    print("\n".join(lines))
    print(f"figure: {root / 'sweep.png'}")
    assert math.isfinite(best.test.log_px)


if __name__ == "__main__":
    main()
