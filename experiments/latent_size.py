"""Experiment: the lower bound against the latent size (Kingma & Welling 2013, Fig. 2).

Train and test ELBO against the number of training examples seen, for latent sizes 3, 5, 10,
20 and 200, on the largest data set available (MNIST where its files are found, otherwise
Fashion-MNIST), and each model's test log p(x) by importance sampling at the end. The test ELBO
is only recorded for the plot, never used for any choice.

    python experiments/latent_size.py [--epochs 20] [--num-samples 500]

Writes ``runs/latent_size/latent_size.png`` and ``latent_size.md``; each model is a pyro-vae run
directory ``runs/latent_size/z<k>/``, reused when the script runs again.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import evaluation, get_args_parser, run_config

from pyro_vae import load_dataset
from pyro_vae.app.plots import plot_curves
from pyro_vae.data.datasets import locate_dataset
from pyro_vae.data.pixels import eval_view
from pyro_vae.infer.training import resolve_device
from pyro_vae.jobs.run import trained_run


def main() -> None:
    shared = get_args_parser(
        default_help={"dataset": "mnist if found, else fashion-mnist"},
        runs_dir="runs/latent_size",
        dataset=None,
        latents=[3, 5, 10, 20, 200],
        epochs=20,
        num_samples=500,
    )
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[shared])
    parser.add_argument("--hidden", type=int, nargs="+", default=[500])
    args = parser.parse_args()
    name = args.dataset or ("mnist" if locate_dataset("mnist") else "fashion-mnist")
    dataset = load_dataset(name, download=False)
    root = Path(args.runs_dir)
    device = resolve_device(args.device)
    curves, lines = (
        [],
        [
            f"{name}, hidden layers {args.hidden}, {args.epochs} epochs of {len(dataset.train):,} "
            f"images; test log p(x) by importance sampling with K = {args.num_samples} (nats per "
            "image, ± standard error over the test images).",
            "",
            "| latent size | train ELBO | test ELBO | test log p(x) | k̂ > 0.7 | active units |",
            "|---|---|---|---|---|---|",
        ],
    )
    for k in args.latents:
        cfg = run_config(args, name, model={"latent_dim": k, "hidden": list(args.hidden)})
        run, vae, metrics = trained_run(
            cfg, root, f"z{k}", dataset, progress=not args.quiet, monitor_test=True
        )
        curves.append(
            {
                "label": f"latent {k}",
                "x": [m.examples_seen for m in metrics],
                "train": [m.train_objective for m in metrics],
                "test": [m.test_elbo for m in metrics],
            }
        )
        ev, _ = evaluation(run, vae, cfg, dataset, args.num_samples, progress=not args.quiet)
        x = eval_view(dataset.test, dataset.levels, cfg.data.pixels, "test")
        active = int((vae.activity(x.to(device)) > 0.01).sum())
        last = metrics[-1]
        lines.append(
            f"| {k} | {last.train_objective:.2f} | {last.test_elbo:.2f} | "
            f"{ev.log_px:.2f} ± {ev.log_px_se:.2f} | {ev.khat_above} | "
            f"{active} of {k} |"
        )
        print(lines[-1], flush=True)
    figure = plot_curves(
        curves,
        root / "latent_size.png",
        title=f"{name}: ELBO against training examples seen, by latent size",
        xlabel="training examples seen",
        ylabel="ELBO (nats per image)",
        logx=True,
    )
    lines.append("")
    lines.append(
        "Active units: latent dimensions whose posterior mean varies over the test set "
        "(Var_x E_q[z|x] > 0.01, Burda et al.); the others the model leaves unused."
    )
    (root / "latent_size.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"figure: {figure}")


if __name__ == "__main__":
    main()
