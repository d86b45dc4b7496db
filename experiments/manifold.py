"""Experiment: the learned manifold and the latent space (Kingma & Welling 2013, Fig. 4).

A VAE with a 2-D latent space: its decoder means E[x | z] over a 20 x 20 grid of z through the
inverse CDF of the N(0, I) prior (the manifold), and the test set's posterior means E_q[z | x]
coloured by class. A VAE with a 20-D latent space: the t-SNE map of its posterior means.

    python experiments/manifold.py [--dataset fashion-mnist] [--epochs 20]

Writes ``runs/manifold/manifold.png``, ``latent_2d.png`` and ``latent_tsne.png``; the models are
run directories ``runs/manifold/<dataset>-z2`` and ``-z20``, reused when the script runs again.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import get_args_parser, run_config

from pyro_vae import load_dataset
from pyro_vae.app.latent import embed_2d
from pyro_vae.app.plots import plot_image_grid, plot_latent_scatter
from pyro_vae.data.datasets import CLASS_NAMES
from pyro_vae.data.pixels import eval_view
from pyro_vae.infer.training import resolve_device
from pyro_vae.jobs.run import trained_run


def main() -> None:
    shared = get_args_parser(runs_dir="runs/manifold", dataset="fashion-mnist", epochs=20)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[shared])
    parser.add_argument("--grid", type=int, default=20)
    parser.add_argument("--tsne-points", type=int, default=3000)
    args = parser.parse_args()
    dataset = load_dataset(args.dataset, download=False)
    root = Path(args.runs_dir)
    device = resolve_device(args.device)
    names = CLASS_NAMES.get(dataset.name, [str(c) for c in range(10)])
    x = eval_view(dataset.test, dataset.levels, "dynamic", "test").to(device)
    labels = dataset.test.labels
    for latent in (2, 20):
        cfg = run_config(args, dataset.name, model={"latent_dim": latent})
        run, vae, metrics = trained_run(
            cfg, root, f"{dataset.name}-z{latent}", dataset, progress=not args.quiet
        )
        print(f"latent {latent}: validation ELBO {metrics[-1].val_elbo:.2f}", flush=True)
        if latent == 2:
            grid = vae.latent_grid_means(args.grid, (0, 1))
            print(
                plot_image_grid(
                    grid,
                    dataset.image_shape,
                    root / "manifold.png",
                    nrow=args.grid,
                    title=f"{dataset.name}: E[x | z] over the 2-D latent space,\nz at the "
                    f"quantiles (m - 1/2)/{args.grid} of N(0, 1) (Kingma & Welling Fig. 4)",
                )
            )
            z = vae.posterior_means(x).cpu()
            print(
                plot_latent_scatter(
                    z,
                    labels,
                    names,
                    root / "latent_2d.png",
                    title=f"{dataset.name}: posterior means of the {len(x):,} test images "
                    "(2-D latent)",
                    axis_label="E_q[z | x]",
                )
            )
        else:
            n = min(args.tsne_points, len(x))
            points, axis = embed_2d(vae.posterior_means(x[:n]).cpu())
            print(
                plot_latent_scatter(
                    points,
                    labels[:n],
                    names,
                    root / "latent_tsne.png",
                    title=f"{dataset.name}: t-SNE of the posterior means of {n:,} test images "
                    "(20-D latent)",
                    axis_label=axis,
                )
            )


if __name__ == "__main__":
    main()
