"""Experiment: a finite mixture of Gaussians against the VAE's continuous mixture.

A GMM is p(x) = sum_k pi_k N(x; mu_k, Sigma_k) with K free components; a VAE with a Gaussian
decoder is p(x) = integral N(z; 0, I) N(x; mu_theta(z), Sigma_theta(z)) dz, infinitely many
components tied together by a network. Same data, same splits, same metric (test log p(x): exact
for the mixture, importance-sampled for the VAE):

* ``--part toy``: 2-D data (two moons, rings, pinwheel, spiral). GMMs with full covariance and
  K = 1, 3, 10, 30 (EM) against VAEs with a 1-D and a 2-D latent and a Gaussian decoder with
  learned sigma(z) (KL warm-up, which keeps the decoder from explaining everything with one wide
  Gaussian). Figures: ``toy_densities.png`` (heat maps of each learned density; the VAE's by
  quadrature over z) and ``toy_components.png`` (the GMM's K ellipses against the VAE's many
  small Gaussians N(mu_theta(z_m), Sigma_theta(z_m)) laid along its decoder curve).
* ``--part images``: digits and Fashion-MNIST. Dequantized pixels: VAE with learned-sigma
  Gaussian decoder against diagonal GMMs; binarized pixels: Bernoulli VAE against mixtures of
  Bernoullis. K = 1, 10, 50, 200 and VAE latent sizes, with parameter counts and training time;
  each VAE's run directory holds the figure of mixture samples and means beside the VAE's.

    python experiments/gmm_vs_vae.py --part toy
    python experiments/gmm_vs_vae.py --part images [--epochs-fashion 10] [--num-samples 500]

Results go to ``runs/gmm_vs_vae/`` (``toy.md``, ``images.md``, figures, run directories). The
toy part keeps its fitted models (``toy_<data>.pt``); run again, it redraws from them.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import pyro
import torch
from common import evaluation, get_args_parser, run_config

from pyro_vae import (
    MLP,
    VAE,
    DiagonalGaussianGuide,
    StandardNormalPrior,
    TrainConfig,
    Trainer,
    load_checkpoint,
    load_dataset,
    log_marginal,
    save_checkpoint,
)
from pyro_vae.app.baseline import compare_with_mixtures, fit_baselines
from pyro_vae.app.figures import write_figures
from pyro_vae.app.plots import density_grid, plot_density_rows, plot_mixture_components
from pyro_vae.app.run_tensors import mixture_from_state
from pyro_vae.app.vae_build import load_model_state
from pyro_vae.data.toy import TOY_DATASETS, make_toy
from pyro_vae.infer.training import TensorData, resolve_device
from pyro_vae.jobs.run import trained_run
from pyro_vae.model.continuous_mixture import log_density_by_quadrature, prior_quantile_grid
from pyro_vae.model.likelihoods import LearnedGaussianLikelihood
from pyro_vae.model.mixtures import GaussianMixture

TOY_COMPONENTS = (1, 3, 10, 30)
EXTENT = (-2.6, 2.6, -2.6, 2.6)


# ----------------------------------------------------------------------------- toy data


def toy_vae(latent_dim: int, hidden=(64, 64)) -> VAE:
    """A VAE for 2-D points: Gaussian decoder with learned sigma(z) >= 0.01, identity mean."""
    return VAE(
        StandardNormalPrior(latent_dim),
        DiagonalGaussianGuide(2, latent_dim, list(hidden)),
        MLP(latent_dim, list(hidden)[::-1], 4),
        LearnedGaussianLikelihood(min_sigma=0.01, link="identity"),
    )


def run_toy(args: argparse.Namespace, root: Path) -> None:
    train_cfg = TrainConfig(
        epochs=args.toy_epochs,
        batch_size=200,
        lr=3e-3,
        device="cpu",  # 2,000 points in two dimensions: the CPU is the right place
        kl_warmup=int(0.4 * args.toy_epochs),
    )
    grid, shape = density_grid(EXTENT, 150)
    lines = [
        f"2-D toy data: {args.toy_train} training and {args.toy_test} test points per set, "
        "standardized; test log p(x) in nats per point (± standard error over points). GMM: "
        "exact; VAE: importance sampling, K = 2000. VAE training: "
        f"{args.toy_epochs} epochs, KL warm-up over {train_cfg.kl_warmup}.",
        "",
        "| data | "
        + " | ".join(f"GMM K={k}" for k in TOY_COMPONENTS)
        + " | VAE, 1-D z | VAE, 2-D z |",
        "|---|" + "---|" * (len(TOY_COMPONENTS) + 2),
    ]
    figure_rows, results = [], {}
    component_panels = None
    for name in TOY_DATASETS:
        train_x = make_toy(name, args.toy_train, seed=0)
        val_x, test_x = make_toy(name, 500, seed=1), make_toy(name, args.toy_test, seed=2)
        cells, panels = [], []
        gmms, vaes = {}, {}
        saved_path = root / f"toy_{name}.pt"
        key = {"epochs": args.toy_epochs, "train": args.toy_train, "seed": args.seed}
        saved = load_checkpoint(saved_path) if saved_path.is_file() else None
        if saved is not None and (
            saved.get("key") != key
            or not isinstance(saved.get("gmms"), dict)
            or not isinstance(saved.get("vaes"), dict)
        ):
            saved = None  # fitted with other settings (or not this script's file): fit again
        for k in TOY_COMPONENTS:
            if saved is not None:
                gmm = mixture_from_state(saved["gmms"].get(str(k)), saved_path, data_dim=2)
            else:
                gmm = GaussianMixture(k, "full", seed=args.seed).fit(train_x)
            gmms[k] = gmm
            lp = gmm.log_prob(test_x)
            cells.append(f"{lp.mean():.3f} ± {lp.std() / math.sqrt(len(lp)):.3f}")
            results[f"{name}/GMM-{k}"] = lp.mean().item()
            if k in (3, 10, 30):
                panels.append((f"GMM, K={k}", gmm.log_prob(grid).reshape(shape).float()))
        for latent in (1, 2):
            pyro.set_rng_seed(args.seed)
            vae = toy_vae(latent)
            start = time.perf_counter()
            if saved is not None:
                load_model_state(vae, saved["vaes"].get(str(latent)), saved_path)
            else:
                data = TensorData(train_x, val_x, name)
                Trainer(vae, train_cfg, data, progress=False).fit()
            vae.eval()
            est = log_marginal(vae.model, vae.guide, test_x, 2000, seed=0).summary(2)
            cells.append(f"{est.log_px:.3f} ± {est.log_px_se:.3f}")
            results[f"{name}/VAE-z{latent}"] = est.log_px
            per_dim = 400 if latent == 1 else 60
            density = log_density_by_quadrature(vae, grid, per_dim=per_dim)
            panels.append((f"VAE, {latent}-D z", density.reshape(shape)))
            vaes[latent] = vae
            seconds = time.perf_counter() - start
            print(f"  {name} VAE z{latent}: {est.log_px:.3f} ({seconds:.0f} s)", flush=True)
        if saved is None:  # keep the fitted models: figures can be redrawn without refitting
            save_checkpoint(
                saved_path,
                {
                    "key": key,
                    "gmms": {str(k): g.state_dict() for k, g in gmms.items()},
                    "vaes": {str(z): v.state_dict() for z, v in vaes.items()},
                },
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        figure_rows.append((name, train_x, panels))
        if name == args.components_data:
            component_panels = components_figure_panels(gmms[10], vaes)
            component_data = train_x
        print(
            f"{name}: "
            + ", ".join(f"{k} {v:.3f}" for k, v in results.items() if k.startswith(name))
        )
    plot_density_rows(
        figure_rows,
        EXTENT,
        root / "toy_densities.png",
        "Learned densities p(x): finite mixtures (GMM) and continuous mixtures (VAE)",
    )
    if component_panels:
        plot_mixture_components(
            component_data,
            component_panels,
            EXTENT,
            root / "toy_components.png",
            f"{args.components_data}: K free Gaussians against infinitely many tied ones "
            "(2-standard-deviation ellipses)",
        )
    (root / "toy.md").write_text("\n".join(lines) + "\n")
    (root / "toy.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))


@torch.no_grad()
def components_figure_panels(gmm: GaussianMixture, vaes: dict[int, VAE]) -> list[dict]:
    panels = [
        {
            "title": f"GMM: K={gmm.n_components} components",
            "means": gmm.means,
            "covariances": gmm.covariances(),
            "weights": gmm.weights,
        }
    ]
    for latent, per_dim in ((1, 40), (2, 12)):
        vae = vaes[latent]
        z = prior_quantile_grid(latent, per_dim)
        p = vae.decode(z)
        means, scales = p.base_dist.loc, p.base_dist.scale
        panels.append(
            {
                "title": f"VAE, {latent}-D z: N(mu(z_m), Sigma(z_m)) for {len(z)} z_m\n"
                "at prior quantiles (equal weights)",
                "means": means,
                "covariances": torch.diag_embed(scales**2),
                "weights": torch.ones(len(z)),
                "color": "C1",
                "curve": means if latent == 1 else None,
            }
        )
    return panels


# ----------------------------------------------------------------------------- images


def run_images(args: argparse.Namespace, root: Path) -> None:
    device = resolve_device(args.device)
    lines = [
        "Test log p(x) in nats per image (± standard error over the test images) and bits per "
        f"dimension; mixtures exact, VAEs by importance sampling (K = {args.num_samples}). "
        "Dequantized: Gaussian VAE (learned sigma(z)) vs diagonal GMM; binarized: Bernoulli "
        "VAE vs mixture of Bernoullis. Same splits, same test tensor.",
        "",
        "| data set | pixels | model | log p(x) | bits/dim | parameters of p(x) | training |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in args.datasets:
        dataset = load_dataset(name)
        epochs = args.epochs_digits if name == "digits" else args.epochs_fashion
        for likelihood, pixels in (("gaussian-learned", "dequantized"), ("bernoulli", "dynamic")):
            train = {"epochs": epochs}
            if likelihood != "bernoulli":
                train["kl_warmup"] = max(1, epochs // 5)
            cfg = run_config(
                args, name, data={"pixels": pixels}, model={"likelihood": likelihood}, train=train
            ).copy()  # its latent size varied below
            print(f"{name}, {pixels}: mixtures K = {args.components}", flush=True)
            fitted = fit_baselines(cfg, dataset, args.components)
            for row in fitted[0]:
                lines.append(
                    f"| {name} | {pixels} | {row.model} | {row.log_px:.2f} ± "
                    f"{row.log_px_se:.2f} | {row.bits_per_dim:.4f} | "
                    f"{row.num_parameters:,} | {row.seconds:.0f} s (EM) |"
                )
            for latent in args.latents:
                cfg.model.latent_dim = latent
                run, vae, metrics = trained_run(
                    cfg, root, f"{name}-{pixels}-z{latent}", dataset, progress=not args.quiet
                )
                _, estimate = evaluation(
                    run, vae, cfg, dataset, args.num_samples, progress=not args.quiet
                )
                # the mixtures of this call (this K list) against this VAE, always recomputed
                base = compare_with_mixtures(run, vae, cfg, dataset, estimate, fitted=fitted)
                if not run.file("figures/gmm_vs_vae.png").is_file():
                    write_figures(run, vae, cfg, dataset, device)
                seconds = metrics[-1].wall_seconds
                assert base is not None  # the mixtures were fitted above
                vae_row, diff = base.vae, base.vae_minus_best_mixture
                lines.append(
                    f"| {name} | {pixels} | VAE, latent {latent} ({diff.mean:+.2f} ± "
                    f"{diff.se:.2f} vs {base.best_mixture}) | {vae_row.log_px:.2f} ± "
                    f"{vae_row.log_px_se:.2f} | {vae_row.bits_per_dim:.4f} | "
                    f"{vae_row.parameters_of_px:,} | {seconds:.0f} s ({epochs} epochs) |"
                )
                print(lines[-1], flush=True)
    (root / "images.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    shared = get_args_parser(runs_dir="runs/gmm_vs_vae", num_samples=500, latents=[2, 20], seed=0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[shared])
    parser.add_argument("--part", choices=["toy", "images", "all"], default="all")
    toy = parser.add_argument_group("toy")
    toy.add_argument("--toy-train", type=int, default=2000)
    toy.add_argument("--toy-test", type=int, default=2000)
    toy.add_argument("--toy-epochs", type=int, default=1000)
    toy.add_argument("--components-data", default="moons", choices=sorted(TOY_DATASETS))
    images = parser.add_argument_group("images")
    images.add_argument("--datasets", nargs="+", default=["digits", "fashion-mnist"])
    images.add_argument("--components", type=int, nargs="+", default=[1, 10, 50, 200])
    images.add_argument("--epochs-digits", type=int, default=300)
    images.add_argument("--epochs-fashion", type=int, default=10)
    args = parser.parse_args()
    root = Path(args.runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    if args.part in ("toy", "all"):
        run_toy(args, root)
    if args.part in ("images", "all"):
        run_images(args, root)


if __name__ == "__main__":
    main()
