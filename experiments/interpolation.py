"""Experiment: interpolating with a plain autoencoder against a VAE ("2" to "9").

Both models have the same networks and are trained on the same binarized data for the same
epochs. Straight lines between the codes of a "2" and a "9" from the test set are decoded by
each; every frame, as its most probable binary image, is scored by judges that decoded neither
path: a second VAE trained with another seed (importance-sampled log p(x)) and a mixture of
Bernoullis (exact log p(x)). Higher scores mean the path stays where the data are.

    python experiments/interpolation.py [--dataset digits] [--pairs 50]

Writes ``runs/interpolation/interpolation.png`` and ``interpolation.md``; the models are run
directories under ``runs/interpolation/``, reused when the script runs again.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import get_args_parser, run_config

from pyro_vae import load_dataset
from pyro_vae.app.interpolation import (
    interpolation_study,
    load_run_autoencoder,
    train_run_autoencoder,
)
from pyro_vae.app.plots import plot_interpolations
from pyro_vae.data.pixels import eval_view
from pyro_vae.infer.training import resolve_device
from pyro_vae.jobs.run import trained_run
from pyro_vae.model.mixtures import BernoulliMixture


def main() -> None:
    shared = get_args_parser(
        runs_dir="runs/interpolation", dataset="digits", epochs=None, num_samples=500
    )
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[shared])
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--mixture-components", type=int, default=10)
    args = parser.parse_args()
    dataset = load_dataset(args.dataset, download=False)
    root = Path(args.runs_dir)
    device = resolve_device(args.device)

    cfg = run_config(args, dataset.name, train={"seed": 0})
    judge_cfg = run_config(args, dataset.name, train={"seed": 1})
    run, vae, _ = trained_run(cfg, root, f"{dataset.name}-vae", dataset, not args.quiet)
    _, judge, _ = trained_run(judge_cfg, root, f"{dataset.name}-judge", dataset, not args.quiet)
    ae = load_run_autoencoder(run, cfg, dataset, device)
    if ae is None:
        ae = train_run_autoencoder(run, cfg, dataset, device, progress=not args.quiet).eval()
    x_train = eval_view(dataset.train, dataset.levels, "static", "train")
    mixture = BernoulliMixture(args.mixture_components, seed=0).fit(x_train)
    judges = {
        "a second VAE (seed 1)": judge,
        f"BernoulliMixture(K={args.mixture_components})": mixture,
        "the VAE itself": vae,
    }
    result, paths = interpolation_study(
        run,
        vae,
        ae,
        cfg,
        dataset,
        device,
        n_pairs=args.pairs,
        num_samples=args.num_samples,
        judges=judges,
        output="interpolation_judged.json",
    )
    figure = plot_interpolations(
        paths,
        dataset.image_shape,
        root / "interpolation.png",
        title=f"{dataset.name}: straight lines between the codes of a "
        f"{result.classes[0]} and a {result.classes[1]} (right: log p of each frame's most "
        "probable image under a second VAE)",
    )
    lines = [
        f"{dataset.name}: {args.pairs} pairs of test images (classes {result.classes[0]} and "
        f"{result.classes[1]}), {result.steps} frames per path; mean log p of the interior "
        "frames' most probable images, nats per image (± standard error over pairs).",
        "",
        "| judge | autoencoder path | VAE path | VAE − autoencoder (paired) |",
        "|---|---|---|---|",
    ]
    for name, j in result.judges.items():
        lines.append(
            f"| {name} | {j.autoencoder_mean_log_px:.2f} | {j.vae_mean_log_px:.2f} | "
            f"{j.vae_minus_autoencoder:+.2f} ± {j.vae_minus_autoencoder_se:.2f} |"
        )
    (root / "interpolation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"figure: {figure}")


if __name__ == "__main__":
    main()
