"""Experiment: where is each model's bound loose? The inference gaps, and refined IS proposals.

Cremer, Li & Duvenaud (2018) split the gap between a VAE's log p(x) and its ELBO per image:

    log p(x) - ELBO = [log p(x) - ELBO*]  +  [ELBO* - ELBO]
                      approximation gap      amortization gap

where ELBO* is the ELBO of the guide's family refined for that image alone. Five models are
trained on the same data with the same seed (today's default, the full-covariance guide, the
flow guide, the quality preset and the default trained with the IWAE bound, K = 5), and
``pyro-vae evaluate RUN --gaps`` measures both gaps on the first ``--images`` statically
binarized test images (log p(x) by AIS). Then, on the default model, ``evaluate --refine R``
(q refined per image as the importance-sampling proposal) is set against plain IS at the same
K on the first ``--is-images`` test images: k-hat, ESS and log p(x), paired per image.

    python experiments/inference_gaps.py --threads 1 [--images 200] [--is-images 1000]

Runs go to ``runs/inference_gaps/<row>/``; finished runs and evaluations are reused, so the
script can be stopped and re-run. Writes ``gaps.md``, ``refine.md`` and ``inference_gaps.png``
there (``experiments/publish_figures.py`` copies the figure to docs/figures/).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from common import benchmark_settings, get_args_parser, paired, run_config, slug

from pyro_vae import load_dataset
from pyro_vae.app.checkpoint import atomic_write_text
from pyro_vae.app.evaluate import Estimator
from pyro_vae.app.evaluations import load_points, read_evaluations
from pyro_vae.app.gaps import GapPoints
from pyro_vae.app.options import positive_int
from pyro_vae.app.plots import _save, plt
from pyro_vae.app.run_tensors import Points
from pyro_vae.app.runs import RunDirectory
from pyro_vae.infer.marginal import MarginalEstimate
from pyro_vae.jobs.evaluate import evaluate_run
from pyro_vae.jobs.run import trained_run
from pyro_vae.store.evaluation import estimate_key

KHAT = 0.7
"""Pareto k-hat above which an image's importance-sampling estimate is not to be trusted."""


@dataclass
class Row:
    name: str
    what: str
    model: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)


QUALITY = {
    "model": {"prior": "vamp"},
    "data": {"pixels": "grey"},
    "train": {"elbo": "iwae", "particles": 5, "lr": 3e-3, "lr_schedule": "cosine"},
}
"""The quality preset as these gaps were measured (0.3's: ReLU layers; today's adds gated
layers, ``pyro_vae.config.presets``)."""
ROWS = [
    Row("default", "today's default: mixture prior, diagonal guide, ELBO"),
    Row("full guide", "full-covariance Gaussian guide", model={"guide": "full"}),
    Row("flow guide", "flow guide (--guide flow)", model={"guide": "flow"}),
    Row("quality preset", "0.3's --preset quality: VampPrior, IWAE-5, cosine lr", **QUALITY),
    Row(
        "IWAE-5",
        "the default trained with the IWAE bound, K = 5",
        train={"elbo": "iwae", "particles": 5},
    ),
]
"""The models, relative to today's defaults (``published=False``)."""


def gaps_estimator(args: argparse.Namespace) -> Estimator:
    return Estimator(
        method="gaps",
        num_samples=args.elbo_samples,
        num_steps=args.ais_steps,
        num_chains=args.chains,
        num_leapfrog=args.leapfrog,
        images=args.images,
        refine_steps=args.refine_steps,
    )


def estimated(run: RunDirectory, est: Estimator, quiet: bool) -> tuple[object, Points]:
    """The record and per-image values of ``est`` on the run's test images: read back when the
    run holds them, else computed by ``pyro-vae evaluate``'s job (and kept in the run)."""
    settings = {f: getattr(est, f) for f in ("method", "num_samples", "refine_steps")}
    settings |= {"num_steps": est.num_steps, "num_chains": est.num_chains}
    settings |= {"num_leapfrog": est.num_leapfrog, "start": est.start, "first_images": est.images}
    key = estimate_key(settings)
    held = read_evaluations(run)
    record = (held.gaps if est.method == "gaps" else held.estimates).get(key)
    if record is None or record.seed != est.seed:
        evaluate_run(run.path, est, device="cpu", progress=not quiet)
        held = read_evaluations(run)
        record = (held.gaps if est.method == "gaps" else held.estimates)[key]
    return record, load_points(run, key)


def se_text(mean: float, se: float, digits: int = 2) -> str:
    return f"{mean:+.{digits}f} ± {se:.{digits}f}"


def mean_se(values: torch.Tensor) -> tuple[float, float]:
    v = values.double()
    return v.mean().item(), v.std().item() / math.sqrt(len(v))


def gaps_of(points: GapPoints) -> dict[str, torch.Tensor]:
    """Per-image approximation, amortization and total gaps (and their Monte Carlo errors)."""
    return {
        "approximation": points.approximation_gap.double(),
        "amortization": points.amortization_gap.double(),
        "total": (points.log_px - points.elbo).double(),
        "approximation_mc": points.approximation_gap_mc_se.double(),
        "amortization_mc": points.amortization_gap_mc_se.double(),
        "total_mc": torch.hypot(points.log_px_mc_se.double(), points.elbo_mc_se.double()),
    }


def mc_of_mean(per_image_mc: torch.Tensor) -> float:
    """The Monte Carlo error of a mean over images (independent per-image errors)."""
    return per_image_mc.pow(2).sum().sqrt().item() / len(per_image_mc)


def gaps_table(results: dict[str, tuple[object, GapPoints]], args: argparse.Namespace) -> str:
    """The markdown table of the gaps per model, and the gaps paired against the default."""
    head = (
        f"{args.dataset}, {args.epochs} epochs, seed {args.seed}; the first {args.images} "
        "statically binarized test images; log p(x) by AIS (T = {T}, C = {C}, L = {L}, from the "
        "guide), ELBO and ELBO* from {S} draws each, q refined for {R} Adam steps per image. Nats "
        "per image: mean ± standard error over images (Monte Carlo error of the mean in "
        "brackets); Δ: paired per image against the default."
    ).format(
        T=args.ais_steps, C=args.chains, L=args.leapfrog, S=args.elbo_samples, R=args.refine_steps
    )
    lines = [
        head,
        "",
        "| model | log p(x) (AIS) | ELBO* | ELBO | approximation gap | amortization gap "
        "| total gap | amortization share | AIS flagged | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, (record, points) in results.items():
        g = gaps_of(points)
        cells = [name]
        for key in ("log_px", "refined_elbo", "elbo"):
            m, s = mean_se(getattr(points, key))
            cells.append(f"{m:.2f} ± {s:.2f}")
        for key in ("approximation", "amortization", "total"):
            m, s = mean_se(g[key])
            cells.append(f"{m:.2f} ± {s:.2f} ({mc_of_mean(g[f'{key}_mc']):.2f})")
        share = g["amortization"].mean().item() / g["total"].mean().item()
        cells += [f"{100 * share:.0f} %", str(record.ais_unreliable), f"{record.seconds:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if "default" in results:
        lines += [
            "",
            "Paired against the default, per image (Δ = model − default):",
            "",
            "| model | Δ approximation gap | Δ amortization gap | Δ total gap | Δ log p(x) |",
            "|---|---|---|---|---|",
        ]
        base = gaps_of(results["default"][1])
        base_px = results["default"][1].log_px
        for name, (_, points) in results.items():
            if name == "default":
                continue
            g = gaps_of(points)
            cells = [name]
            for key in ("approximation", "amortization", "total"):
                cells.append(se_text(*paired(g[key], base[key])))
            cells.append(se_text(*paired(points.log_px, base_px)))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def draw(
    results: dict[str, tuple[object, GapPoints]], path: Path, args: argparse.Namespace
) -> Path:
    """Left: the mean gaps per model as stacked bars (approximation below, amortization on top),
    each with ± 2 standard errors over images, the total written above; right: box plots of
    the per-image gaps."""
    names = list(results)
    gaps = [gaps_of(points) for _, points in results.values()]
    approx = [g["approximation"].mean().item() for g in gaps]
    amort = [g["amortization"].mean().item() for g in gaps]
    approx_se = [mean_se(g["approximation"])[1] for g in gaps]
    amort_se = [mean_se(g["amortization"])[1] for g in gaps]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.0, 4.8), width_ratios=[1, 1.25])
    at = list(range(len(names)))
    labels = [n.replace(" ", "\n") for n in names]
    colours = {"approximation": "tab:blue", "amortization": "tab:orange"}
    left.bar(
        at, approx, 0.6, color=colours["approximation"], label="approximation: log p(x) − ELBO*"
    )
    base = [max(a, 0) for a in approx]
    left.bar(
        at,
        amort,
        0.6,
        bottom=base,
        color=colours["amortization"],
        label="amortization: ELBO* − ELBO",
    )
    bar = {"fmt": "none", "ecolor": "k", "capsize": 3, "lw": 1}
    left.errorbar([i - 0.12 for i in at], approx, yerr=[2 * s for s in approx_se], **bar)
    tops = [b + m for b, m in zip(base, amort, strict=True)]
    left.errorbar([i + 0.12 for i in at], tops, yerr=[2 * s for s in amort_se], **bar)
    for i, (a, m, top, se) in enumerate(zip(approx, amort, tops, amort_se, strict=True)):
        left.text(i, top + 2 * se + 0.05 * max(tops), f"{a + m:.2f}", ha="center", fontsize=8)
    left.set_ylim(
        min(0, *approx) * 1.2, 1.25 * max(t + 2 * s for t, s in zip(tops, amort_se, strict=True))
    )
    left.set_xticks(at, labels, fontsize=9)
    left.set_ylabel("nats per image (mean ± 2 s.e.)")
    left.axhline(0, color="k", lw=0.5)
    left.legend(fontsize=8, loc="upper left")
    left.set_title("mean gaps per model (total above each bar)", fontsize=10)
    width = 0.38
    for key, shift in (("approximation", -width / 2), ("amortization", width / 2)):
        parts = right.boxplot(
            [g[key].numpy() for g in gaps],
            positions=[i + shift for i in at],
            widths=width * 0.9,
            patch_artist=True,
            flierprops={"markersize": 2, "alpha": 0.5},
            medianprops={"color": "k"},
        )
        for box in parts["boxes"]:
            box.set_facecolor(colours[key])
            box.set_alpha(0.7)
        parts["boxes"][0].set_label(key)
    right.set_xticks(at, labels, fontsize=9)
    right.axhline(0, color="k", lw=0.5)
    right.set_ylabel("nats")
    right.legend(fontsize=8, loc="upper left")
    right.set_title(f"the gaps of each of the {args.images} test images", fontsize=10)
    fig.suptitle(
        f"Inference gaps on {args.dataset} ({args.epochs} epochs; log p(x) by AIS with "
        f"T = {args.ais_steps}; q refined for {args.refine_steps} steps per image)",
        fontsize=11,
    )
    fig.tight_layout()
    return _save(fig, path)


def importance_sampled(
    run: RunDirectory, est: Estimator, quiet: bool
) -> tuple[object, MarginalEstimate]:
    """:func:`estimated` for importance sampling: the record and its per-image estimate."""
    record, points = estimated(run, est, quiet)
    estimate = points.marginal_estimate()
    assert estimate is not None, "an importance-sampling points file holds every value"
    return record, estimate


def refine_table(
    plain: tuple[object, MarginalEstimate], refined: tuple[object, MarginalEstimate], args
) -> str:
    """Plain IS against IS with the refined proposal, the same K, the same images."""
    (rec_p, pts_p), (rec_r, pts_r) = plain, refined
    kp, kr = pts_p.khat.double(), pts_r.khat.double()
    fixed = int(((kp > KHAT) & (kr <= KHAT)).sum())
    broken = int(((kp <= KHAT) & (kr > KHAT)).sum())
    dm, ds = paired(pts_r.log_px, pts_p.log_px)
    n = len(kp)

    def row(label: str, p: str, r: str) -> str:
        return f"| {label} | {p} | {r} |"

    gap_p = (pts_p.log_px - pts_p.elbo).double().mean().item()
    gap_r = (pts_r.log_px - pts_r.elbo).double().mean().item()
    lines = [
        f"The default model ({args.dataset}, {args.epochs} epochs); the first {n} statically "
        f"binarized test images; K = {args.is_samples} importance samples per image; the "
        f"refined proposal is q refined per image for {args.is_refine_steps} Adam steps.",
        "",
        "| | plain IS | refined q |",
        "|---|---|---|",
        row(
            "log p(x) (mean ± s.e.)",
            "{:.2f} ± {:.2f}".format(*mean_se(pts_p.log_px)),
            "{:.2f} ± {:.2f}".format(*mean_se(pts_r.log_px)),
        ),
        row("mean k̂", f"{kp.nanmean():.3f}", f"{kr.nanmean():.3f}"),
        row(f"images with k̂ > {KHAT}", f"{int((kp > KHAT).sum())}", f"{int((kr > KHAT).sum())}"),
        row(
            "median effective sample size",
            f"{pts_p.ess.double().median():.0f}",
            f"{pts_r.ess.double().median():.0f}",
        ),
        row("log p(x) − ELBO of the draws", f"{gap_p:.2f}", f"{gap_r:.2f}"),
        row("seconds", f"{rec_p.seconds:.0f}", f"{rec_r.seconds:.0f}"),
        "",
        f"Images moved from k̂ > {KHAT} to k̂ ≤ {KHAT}: {fixed}; back (≤ to >): {broken}. "
        f"Paired change in log p(x) (refined − plain): {dm:+.3f} ± {ds:.3f} nats per image. "
        f"The refinement's extra cost: {rec_r.seconds - rec_p.seconds:.0f} s for {n} images "
        f"({(rec_r.seconds - rec_p.seconds) / n:.2f} s per image).",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        parents=[
            get_args_parser(
                runs_dir="runs/inference_gaps",
                dataset="fashion-mnist",
                epochs=10,
                seed=0,
                threads=None,
                device="cpu",
            )
        ],
    )
    add = parser.add_argument
    add("--images", type=positive_int, default=200, help="test images for the gaps (default: 200)")
    add(
        "--refine-steps",
        type=positive_int,
        default=200,
        metavar="R",
        help="Adam steps of the per-image refinement for the gaps (default: 200)",
    )
    add(
        "--elbo-samples",
        type=positive_int,
        default=1000,
        metavar="S",
        help="draws per image for the ELBO and ELBO* (default: 1000)",
    )
    add(
        "--ais-steps",
        type=positive_int,
        default=100,
        metavar="T",
        help="AIS temperatures for log p(x) (default: 100)",
    )
    add("--chains", type=positive_int, default=8, help="AIS chains per image (default: 8)")
    add("--leapfrog", type=positive_int, default=5, help="AIS leapfrog steps (default: 5)")
    add(
        "--models",
        nargs="+",
        choices=[r.name for r in ROWS],
        metavar="NAME",
        help=f"only these models (default: all: {', '.join(repr(r.name) for r in ROWS)})",
    )
    add(
        "--is-images",
        type=int,
        default=1000,
        metavar="M",
        help="test images for the refined IS proposal on the default model (0: skip; "
        "default: 1000)",
    )
    add(
        "--is-samples",
        type=positive_int,
        default=1000,
        metavar="K",
        help="importance samples per image, plain and refined (default: 1000)",
    )
    add(
        "--is-refine-steps",
        type=positive_int,
        default=200,
        metavar="R",
        help="refinement steps of the IS proposal (default: 200)",
    )
    add("--skip-gaps", action="store_true", help="only the refined-proposal part")
    return parser.parse_args(argv)


def trained(row: Row, args: argparse.Namespace, dataset) -> RunDirectory:
    cfg = run_config(args, model=row.model, data=row.data, train=row.train, published=False)
    began = time.perf_counter()
    run, _, _ = trained_run(cfg, args.runs_dir, slug(row.name), dataset, progress=not args.quiet)
    print(f"{row.name}: trained or reused in {time.perf_counter() - began:.0f} s", flush=True)
    return run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    benchmark_settings(args)
    root = Path(args.runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset(args.dataset)
    rows = [r for r in ROWS if args.models is None or r.name in args.models]
    if not args.skip_gaps:
        results = {}
        for row in rows:
            run = trained(row, args, dataset)
            began = time.perf_counter()
            record, points = estimated(run, gaps_estimator(args), args.quiet)
            names = [f.name for f in fields(GapPoints)]
            results[row.name] = record, GapPoints(**{n: points.values[n] for n in names})
            print(f"{row.name}: gaps in {time.perf_counter() - began:.0f} s", flush=True)
        table = gaps_table(results, args)
        atomic_write_text(root / "gaps.md", table)
        print(table, flush=True)
        print(f"wrote {draw(results, root / 'inference_gaps.png', args)}", flush=True)
    if args.is_images:
        run = trained(ROWS[0], args, dataset)
        common = dict(num_samples=args.is_samples, images=args.is_images)
        plain = importance_sampled(run, Estimator(**common), args.quiet)
        refine = Estimator(**common, refine_steps=args.is_refine_steps)
        refined = importance_sampled(run, refine, args.quiet)
        table = refine_table(plain, refined, args)
        atomic_write_text(root / "refine.md", table)
        print(table, flush=True)


if __name__ == "__main__":
    main()
