"""What the command line prints: evaluations, baselines and file lists, in plain words."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def print_files(result_paths: Sequence[Path], root: Path) -> None:
    for path in result_paths:
        print(f"  {path.relative_to(root)}")


def se_text(value: float | None, digits: int = 3) -> str:
    """A number with ``digits`` decimals, or "n/a" for a value that is missing (JSON null)."""
    return f"{value:.{digits}f}" if value is not None else "n/a"


def print_evaluation(ev: dict) -> None:
    k, n = ev["num_samples"], ev["num_examples"]
    mc = ev["log_px_mc_se"]
    mc_text = f"; Monte Carlo error {mc:.3f}" if mc is not None else ""
    print(
        f"  {ev['split']} log p(x)  {se_text(ev['log_px']):>9s} ± {se_text(ev['log_px_se'])}  "
        f"(importance sampling, K={k}{mc_text})"
    )
    print(
        f"  {ev['split']} ELBO      {se_text(ev['elbo']):>9s} ± {se_text(ev['elbo_se'])}  "
        f"(same draws; log p(x) - ELBO = {se_text(ev['gap'])})"
    )
    print(
        f"  {se_text(ev['bits_per_dim'], 4)} bits/dim; effective sample size median "
        f"{se_text(ev['ess_median'], 0)} of {k}"
    )
    if ev["khat_above_0.7"] is None:
        print(f"  (Pareto k-hat needs K >= 50; got K={k})")
    elif ev["khat_above_0.7"]:
        print(
            f"  WARNING: Pareto k-hat > 0.7 for {ev['khat_above_0.7']} of {n} images (max "
            f"{se_text(ev['khat_max'], 2)}): their importance weights are too heavy-tailed\n"
            "  for those estimates to be trusted. Use a larger K, or a guide closer to the "
            "posterior."
        )
    else:
        print(
            f"  Pareto k-hat <= 0.7 for all {n} images (max {se_text(ev['khat_max'], 2)}): reliable"
        )


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
