"""What the command line prints: evaluations, baselines and file lists, in plain words."""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from pathlib import Path

from ..store.baseline import Baseline
from ..store.evaluation import AISEvaluation, BDMCEvaluation, Estimate


def tolerate_encoding() -> None:
    """Make stdout and stderr show a character their encoding cannot (a run named ``café``
    under ``PYTHONIOENCODING=ascii`` or a C locale) as a backslash escape instead of raising
    :class:`UnicodeEncodeError`."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, io.UnsupportedOperation):
            pass  # not a text stream that can be reconfigured (closed, or replaced)


def print_files(result_paths: Sequence[Path], root: Path) -> None:
    for path in result_paths:
        print(f"  {path.relative_to(root)}")


def se_text(value: float | None, digits: int = 3) -> str:
    """A number with ``digits`` decimals, or "n/a" for a value that is missing (JSON null)."""
    return f"{value:.{digits}f}" if value is not None else "n/a"


def print_evaluation(ev: Estimate, noun: str = "image") -> None:
    """One evaluation (IS or AIS) in plain words; unknown values print as n/a. ``noun``: what
    an example is called (:func:`~.run_data.example_word`)."""
    if isinstance(ev, AISEvaluation):
        _print_ais(ev, noun)
        return
    k, n = ev.num_samples, ev.num_examples
    mc = ev.log_px_mc_se
    mc_text = f"; Monte Carlo error {mc:.3f}" if mc is not None else ""
    print(
        f"  {ev.split} log p(x)  {se_text(ev.log_px):>9s} ± "
        f"{se_text(ev.log_px_se)}  (importance sampling, K={k}{_refined(ev, noun)}{mc_text})"
    )
    print(
        f"  {ev.split} ELBO      {se_text(ev.elbo):>9s} ± {se_text(ev.elbo_se)}  "
        f"(same draws; log p(x) - ELBO = {se_text(ev.gap)})"
    )
    print(
        f"  {se_text(ev.bits_per_dim, 4)} bits/dim; effective sample size median "
        f"{se_text(ev.ess_median, 0)} of {k}"
    )
    above, kmax = ev.khat_above, ev.khat_max
    kmax_text = f"{kmax:.2f}" if kmax is not None else "n/a"
    if above is None:
        print(f"  (Pareto k-hat needs K >= 50; got K={k})")
    elif above:
        print(
            f"  WARNING: Pareto k-hat > 0.7 for {above} of {n} {noun}s (max {kmax_text}): their "
            "importance weights are too heavy-tailed\n"
            "  for those estimates to be trusted. Use a larger K, a guide closer to the "
            "posterior, or AIS (--method ais)."
        )
    else:
        print(f"  Pareto k-hat <= 0.7 for all {n} {noun}s (max {kmax_text}): reliable")


def _print_ais(ev: AISEvaluation, noun: str = "image") -> None:
    mc = ev.log_px_mc_se
    mc_text = f"; Monte Carlo error {mc:.3f}" if mc is not None else ""
    start = "prior" if ev.start == "prior" else "guide"
    print(
        f"  {ev.split} log p(x)  {ev.log_px:9.3f} ± {se_text(ev.log_px_se)}  "
        f"(AIS from the {start}, T={ev.num_steps}, C={ev.num_chains} chains, "
        f"L={ev.num_leapfrog}{mc_text})"
    )
    print(
        f"  {se_text(ev.bits_per_dim, 4)} bits/dim; HMC acceptance mean "
        f"{se_text(ev.acceptance_mean, 2)} (target 0.65), lowest "
        f"{se_text(ev.acceptance_min, 2)}; ESS over chains mean {se_text(ev.ess_mean, 1)} of "
        f"{ev.num_chains}"
    )
    if ev.unreliable:
        print(
            f"  WARNING: for {ev.unreliable} of {ev.num_examples} {noun}s the chains' "
            "weights are too uneven (ESS below half the chains): those estimates and the Monte "
            "Carlo error are not reliable. Use more steps (--steps) or chains (--chains)."
        )
    if ev.acceptance_min is not None and ev.acceptance_min < 0.2:
        print(
            f"  WARNING: some {noun}s' chains barely moved (acceptance below 0.2): their "
            "estimates are closer to importance sampling than to AIS. Use more steps (--steps)."
        )


def print_bdmc(b: BDMCEvaluation, noun: str = "image") -> None:
    """The BDMC sandwich in plain words."""
    print(
        f"BDMC on {b.num_examples} {noun}s simulated from the model (AIS T={b.num_steps}, "
        f"C={b.num_chains}, L={b.num_leapfrog}, {se_text(b.seconds, 1)} s):"
    )
    print(f"  lower bound (forward AIS)   {b.lower:9.3f} ± {se_text(b.lower_se)}")
    print(f"  upper bound (reverse AIS)   {b.upper:9.3f} ± {se_text(b.upper_se)}")
    print(
        f"  gap                         {b.gap:9.3f} ± {se_text(b.gap_se)}  (averages "
        f"over the {noun}s: each bound holds in expectation, so the average log p(x) lies "
        "between them up to their errors; AIS at these settings is off on average by at "
        "most about the gap)"
    )
    if b.is_num_samples and b.is_log_px is not None and b.lower_minus_is is not None:
        d = -b.lower_minus_is  # IS minus the lower bound
        side = "above" if d > 0 else "below"
        print(
            f"  importance sampling, K={b.is_num_samples}: {b.is_log_px:9.3f}, "
            f"{abs(d):.3f} ± {se_text(b.lower_minus_is_se)} {side} the AIS lower bound"
        )


def print_baseline(baseline: Baseline, noun: str = "image") -> None:
    print(f"  finite-mixture baselines (exact log p(x), same test {noun}s):")
    for row in baseline.mixtures:
        print(
            f"    {row.model:24s} {row.log_px:9.3f} ± {row.log_px_se:.3f}  "
            f"({row.bits_per_dim:.4f} bits/dim, {row.num_parameters:,} parameters)"
        )
    vae, diff = baseline.vae, baseline.vae_minus_best_mixture
    print(
        f"    {'VAE':24s} {vae.log_px:9.3f} ± {vae.log_px_se:.3f}  "
        f"({vae.bits_per_dim:.4f} bits/dim, {vae.parameters_of_px:,} parameters of "
        "p(x))"
    )
    print(
        f"  VAE - {baseline.best_mixture} (the mixture with the best validation log p(x)): "
        f"{diff.mean:+.3f} ± {diff.se:.3f} nats per {noun}, paired over the test {noun}s"
    )


def _refined(ev, noun: str = "image") -> str:
    """How the proposal was refined (``evaluate --refine``), if it was."""
    steps = getattr(ev, "refine_steps", None)
    return f", q refined per {noun} for {steps} steps" if steps else ""
