"""What the command line prints: evaluations, baselines and file lists, in plain words."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def print_files(result_paths: Sequence[Path], root: Path) -> None:
    for path in result_paths:
        print(f"  {path.relative_to(root)}")


def se_text(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "n/a"


def print_evaluation(ev: dict) -> None:
    k, n = ev["num_samples"], ev["num_examples"]
    mc = ev["log_px_mc_se"]
    mc_text = f"; Monte Carlo error {mc:.3f}" if mc is not None else ""
    print(
        f"  {ev['split']} log p(x)  {ev['log_px']:9.3f} ± {se_text(ev['log_px_se'])}  "
        f"(importance sampling, K={k}{mc_text})"
    )
    print(
        f"  {ev['split']} ELBO      {ev['elbo']:9.3f} ± {se_text(ev['elbo_se'])}  "
        f"(same draws; log p(x) - ELBO = {ev['gap']:.3f})"
    )
    print(
        f"  {ev['bits_per_dim']:.4f} bits/dim; effective sample size median "
        f"{ev['ess_median']:.0f} of {k}"
    )
    if ev["khat_above_0.7"] is None:
        print(f"  (Pareto k-hat needs K >= 50; got K={k})")
    elif ev["khat_above_0.7"]:
        print(
            f"  WARNING: Pareto k-hat > 0.7 for {ev['khat_above_0.7']} of {n} images (max "
            f"{ev['khat_max']:.2f}): their importance weights are too heavy-tailed\n"
            "  for those estimates to be trusted. Use a larger K, or a guide closer to the "
            "posterior."
        )
    else:
        print(f"  Pareto k-hat <= 0.7 for all {n} images (max {ev['khat_max']:.2f}): reliable")


def print_baseline(baseline: dict) -> None:
    print("  finite-mixture baselines (exact log p(x), same test images):")
    for row in baseline["mixtures"]:
        print(
            f"    {row['model']:24s} {row['log_px']:9.3f} ± {row['log_px_se']:.3f}  "
            f"({row['bits_per_dim']:.4f} bits/dim, {row['num_parameters']:,} parameters)"
        )
    vae, diff = baseline["vae"], baseline["vae_minus_best_mixture"]
    print(
        f"    {'VAE':24s} {vae['log_px']:9.3f} ± {vae['log_px_se']:.3f}  "
        f"({vae['bits_per_dim']:.4f} bits/dim, {vae['generative_parameters']:,} parameters of "
        "p(x))"
    )
    print(
        f"  VAE - {baseline['best_mixture']} (the mixture with the best validation log p(x)): "
        f"{diff['mean']:+.3f} ± {diff['se']:.3f} nats per image, paired over the test images"
    )
