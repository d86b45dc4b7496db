"""Experiment: reconstructions and samples for each likelihood.

The same VAE (784-400-20, standard normal prior, diagonal guide) with each decoder likelihood:
Bernoulli on binarized pixels, Gaussian with a fixed sigma (the "squared error" decoder) and
Gaussian with a learned sigma(z) on dequantized pixels. One figure: for each, test images,
their reconstructions E[x | z = E_q[z | x]] and decoder means for z ~ p(z); and a table of test
log p(x) (each on its own data: binary and continuous densities are not comparable).

    python experiments/likelihoods.py [--dataset fashion-mnist] [--epochs 10]

Writes ``runs/likelihoods/likelihoods.png`` and ``likelihoods.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from common import evaluation, get_args_parser, run_config

from pyro_vae import load_dataset
from pyro_vae.app.plots import plot_image_rows
from pyro_vae.data.pixels import eval_view
from pyro_vae.infer.training import resolve_device
from pyro_vae.jobs.run import trained_run
from pyro_vae.rng import seeded_rng

LIKELIHOODS = [
    ("bernoulli", {}, "Bernoulli, binarized pixels"),
    ("gaussian", {"sigma": 0.1}, "Gaussian, fixed sigma = 0.1, dequantized"),
    ("gaussian-learned", {}, "Gaussian, learned sigma(z), dequantized"),
]


def main() -> None:
    shared = get_args_parser(
        runs_dir="runs/likelihoods", dataset="fashion-mnist", epochs=10, num_samples=200
    )
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[shared])
    parser.add_argument("--images", type=int, default=12)
    args = parser.parse_args()
    dataset = load_dataset(args.dataset, download=False)
    root = Path(args.runs_dir)
    device = resolve_device(args.device)
    rows, labels = [], []
    lines = [
        f"{dataset.name}, {args.epochs} epochs each; test log p(x) by importance sampling with "
        f"K = {args.num_samples} (nats per image ± standard error; bits per dimension of the "
        "discrete images).",
        "",
        "| likelihood | data | test log p(x) | bits/dim | k̂ > 0.7 |",
        "|---|---|---|---|---|",
    ]
    for name, options, title in LIKELIHOODS:
        cfg = run_config(
            args,
            dataset.name,
            model={"likelihood": name, "likelihood_kwargs": dict(options)},
            train={} if name == "bernoulli" else {"kl_warmup": max(1, args.epochs // 5)},
        )
        run, vae, _ = trained_run(cfg, root, name, dataset, progress=not args.quiet)
        ev, _ = evaluation(run, vae, cfg, dataset, args.num_samples, progress=not args.quiet)
        lines.append(
            f"| {name} | {cfg.data.pixels} | {ev.log_px:.2f} ± {ev.log_px_se:.2f} | "
            f"{ev.bits_per_dim:.4f} | {ev.khat_above} |"
        )
        x = eval_view(dataset.test, dataset.levels, cfg.data.pixels, "test")[: args.images]
        with seeded_rng(0), torch.no_grad():
            recon = vae.reconstruct(x.to(device)).cpu()
            samples = vae.sample(args.images).cpu()
        rows += [x, recon, samples]
        labels += [f"{title}\ntest images", "reconstructions", "samples E[x | z]"]
        print(lines[-1], flush=True)
    figure = plot_image_rows(
        rows,
        labels,
        dataset.image_shape,
        root / "likelihoods.png",
        title=f"{dataset.name}: one VAE, three likelihoods",
    )
    (root / "likelihoods.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"figure: {figure}")


if __name__ == "__main__":
    main()
