"""Copy the figures the README shows from the experiments' run directories to docs/figures/.

    python experiments/publish_figures.py

Each source is written by the experiment named beside it (see experiments/run_all.sh); a
missing source is reported, not invented.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

FIGURES = {
    "toy_densities.png": ("runs/gmm_vs_vae/toy_densities.png", "gmm_vs_vae.py --part toy"),
    "toy_components.png": ("runs/gmm_vs_vae/toy_components.png", "gmm_vs_vae.py --part toy"),
    "fashion_gmm_vs_vae.png": (
        "runs/gmm_vs_vae/fashion-mnist-dequantized-z20/figures/gmm_vs_vae.png",
        "gmm_vs_vae.py --part images",
    ),
    "latent_size.png": ("runs/latent_size/latent_size.png", "latent_size.py"),
    "manifold.png": ("runs/manifold/manifold.png", "manifold.py"),
    "latent_2d.png": ("runs/manifold/latent_2d.png", "manifold.py"),
    "latent_tsne.png": ("runs/manifold/latent_tsne.png", "manifold.py"),
    "interpolation.png": ("runs/interpolation/interpolation.png", "interpolation.py"),
    "likelihoods.png": ("runs/likelihoods/likelihoods.png", "likelihoods.py"),
    "sweep.png": ("runs/sweep/sweep.png", "sweep.py"),
    "inference_gaps.png": ("runs/inference_gaps/inference_gaps.png", "inference_gaps.py"),
}


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    root = Path(__file__).resolve().parents[1]
    target = root / "docs" / "figures"
    target.mkdir(parents=True, exist_ok=True)
    for name, (source, script) in FIGURES.items():
        path = root / source
        if path.is_file():
            shutil.copyfile(path, target / name)
            print(f"docs/figures/{name} <- {source}")
        else:
            print(f"missing {source}: run experiments/{script}")


if __name__ == "__main__":
    main()
