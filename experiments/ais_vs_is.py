"""Experiment: how far is importance-sampled log p(x) from annealed importance sampling, and
how far is AIS from the truth (BDMC)?

For a few rows of the priors x guides table (the runs are shared with
``experiments/priors_and_guides.py``: trained once, reused by both), on the first N test
images (statically binarized, one seeded draw): IS with the guide at K = 1,000 and 5,000, and
AIS from the guide at several T (C chains, L leapfrog steps; step sizes tuned per image in a
pilot run, then frozen), each with its seconds, the paired difference to IS K = 1,000 and how
many images AIS's reliability flag calls unreliable; then the BDMC sandwich on images simulated
from each model at two values of T (average bounds with their Monte Carlo errors, the average
gap, and how many images' gap intervals lie wholly below 0). Finally the ranking of the rows by
IS and by the best AIS.

    python experiments/ais_vs_is.py [--dataset fashion-mnist] [--epochs 10] [--images 100]

Writes ``runs/ais_vs_is/ais_vs_is.md`` and ``results.json`` (each estimate is cached there and
not recomputed when the script runs again with the same settings).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

import torch
from common import get_args_parser
from priors_and_guides import ROWS, config_for, slug

from pyro_vae import load_dataset
from pyro_vae.app.checkpoint import atomic_write_text
from pyro_vae.data.pixels import eval_view
from pyro_vae.infer.ais import log_marginal_ais
from pyro_vae.infer.bdmc import bdmc
from pyro_vae.infer.marginal import log_marginal
from pyro_vae.jobs.run import trained_run
from pyro_vae.store.evaluation import BDMCEvaluation
from pyro_vae.store.fields import Record, count, custom, is_value, number

R = TypeVar("R", bound=Record)

DEFAULT_ROWS = ["normal / diagonal / ELBO", "normal / full / ELBO", "vamp / diagonal / IWAE-5"]


@dataclass(frozen=True, kw_only=True)
class Scores(Record):
    """An estimator's per-image log p(x) on the images (cached in ``results.json``), its Monte
    Carlo error, how many images it calls unreliable, AIS's mean acceptance and the seconds
    it took."""

    WHAT: ClassVar[str] = "an estimator's per-image scores"

    log_px: list[float] = custom(
        lambda v: isinstance(v, list) and all(is_value(x) for x in v), "a list of numbers"
    )
    acc: float | None = number(optional=True)
    mc_se: float | None = number(optional=True)
    unreliable: int | None = count(0, optional=True)
    seconds: float | None = number(omit=True)


def _mean_se(t: torch.Tensor) -> tuple[float, float]:
    t = t.double()
    return t.mean().item(), t.std().item() / math.sqrt(len(t))


def main() -> None:
    shared = get_args_parser(runs_dir="runs/ais_vs_is", dataset="fashion-mnist", epochs=10, seed=0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[shared])
    parser.add_argument("--images", type=int, default=100, help="test images (the first N)")
    parser.add_argument("--rows", nargs="+", default=DEFAULT_ROWS, help="rows of the table")
    parser.add_argument(
        "--num-samples", dest="sample_sizes", type=int, nargs="+", default=[1000, 5000], metavar="K"
    )
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 100, 500], metavar="T")
    parser.add_argument("--chains", type=int, default=8, metavar="C")
    parser.add_argument("--leapfrog", type=int, default=5, metavar="L")
    parser.add_argument("--bdmc", type=int, default=20, metavar="N", help="simulated images")
    parser.add_argument("--bdmc-steps", type=int, nargs="+", default=[10, 100], metavar="T")
    parser.add_argument(
        "--train-runs-dir",
        default="runs/priors_and_guides",
        help="where the models are trained (shared with priors_and_guides.py)",
    )
    parser.add_argument("--num-threads", type=int, default=None)
    args = parser.parse_args()
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    out_dir = Path(args.runs_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_path = out_dir / "results.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    dataset = load_dataset(args.dataset, download=False)
    progress = not args.quiet

    def cached(key: str, kind: type[R], compute: Callable[[], R]) -> R:
        """The ``kind`` record cached under ``key``, or ``compute()``'s with the seconds it
        took (then cached)."""
        if key not in cache:
            start = time.perf_counter()
            value = dataclasses.replace(compute(), seconds=time.perf_counter() - start)
            cache[key] = value.to_json()
            atomic_write_text(cache_path, json.dumps(cache, indent=1) + "\n")
        return kind.from_json(cache[key])

    rows = [r for r in ROWS if r.name in args.rows]
    lines = [
        f"{args.dataset}, {args.epochs} epochs each; the first {args.images} statically "
        "binarized test images; nats per image. Δ: paired difference to IS with "
        f"K = {args.sample_sizes[0]} on the same images (± its standard error). AIS from the "
        f"guide with C = {args.chains} chains and L = {args.leapfrog} leapfrog steps per HMC "
        "transition (step size tuned per image towards acceptance 0.65 in a pilot run, then "
        "frozen). MC error: the Monte Carlo error of the mean; unreliable: images whose ESS "
        "over chains is below half the chains (IS: Pareto k̂ > 0.7).",
        "",
        "| model | estimator | log p(x) | Δ vs IS | MC error | unreliable | acceptance | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    bdmc_lines = [
        "",
        f"BDMC on {args.bdmc} images simulated from each model (z* ~ p(z), x ~ p(x|z*)): "
        "forward AIS is a stochastic lower bound, reverse AIS from z* a stochastic upper bound "
        "(each holds in expectation); averaged over the images they sandwich the average "
        "log p(x). lower, upper: averages ± their Monte Carlo errors; gap: average ± its "
        "standard error over images; below 0: images whose gap interval (gap ± 2 MC errors) "
        f"lies wholly below 0. IS with K = {args.sample_sizes[0]} on the same images.",
        "",
        "| model | T | lower | upper | gap | below 0 | IS − lower |",
        "|---|---|---|---|---|---|---|",
    ]
    ranking: dict[str, dict[str, float]] = {}
    for row in rows:
        cfg = config_for(row, args)
        run, vae, _ = trained_run(cfg, args.train_runs_dir, slug(row.name), dataset, progress)
        x = eval_view(dataset.test, dataset.levels, cfg.data.pixels, "test")[: args.images]
        points: dict[str, torch.Tensor] = {}
        keys: dict[str, str] = {}
        for k in args.sample_sizes:
            key = f"{slug(row.name)}|is-K{k}|n{args.images}|v2"

            def run_is(k=k, vae=vae, x=x) -> Scores:
                est = log_marginal(vae.model, vae.guide, x, k, seed=args.seed, progress=progress)
                s = est.summary()
                return Scores(
                    log_px=est.log_px.tolist(),
                    acc=None,
                    mc_se=s.log_px_mc_se,
                    unreliable=s.khat_above,
                )

            points[f"IS, K = {k}"] = torch.tensor(cached(key, Scores, run_is).log_px)
            keys[f"IS, K = {k}"] = key
        for t in args.steps:
            key = f"{slug(row.name)}|ais-T{t}-C{args.chains}-L{args.leapfrog}|n{args.images}|v2"

            def run_ais(t=t, vae=vae, x=x) -> Scores:
                est = log_marginal_ais(
                    vae.model,
                    vae.guide,
                    x,
                    num_steps=t,
                    num_chains=args.chains,
                    num_leapfrog=args.leapfrog,
                    seed=args.seed,
                    progress=progress,
                )
                s = est.summary()
                return Scores(
                    log_px=est.log_px.tolist(),
                    acc=s.acceptance_mean,
                    mc_se=s.log_px_mc_se,
                    unreliable=s.unreliable,
                )

            points[f"AIS, T = {t}"] = torch.tensor(cached(key, Scores, run_ais).log_px)
            keys[f"AIS, T = {t}"] = key
        reference = points[f"IS, K = {args.sample_sizes[0]}"]
        for name, values in points.items():
            key = keys[name]
            mean, se = _mean_se(values)
            d, d_se = _mean_se(values - reference)
            scores = Scores.from_json(cache[key])
            acc, mc = scores.acc, scores.mc_se
            lines.append(
                f"| {row.name} | {name} | {mean:.2f} ± {se:.2f} | "
                + ("—" if values is reference else f"{d:+.2f} ± {d_se:.2f}")
                + f" | {'—' if mc is None else f'{mc:.3f}'} | {scores.unreliable} | "
                + f"{'' if acc is None else f'{acc:.2f}'} | {scores.seconds:.0f} |"
            )
            ranking.setdefault(name, {})[row.name] = mean
            print(lines[-1], flush=True)
        for t in args.bdmc_steps:
            key = f"{slug(row.name)}|bdmc-N{args.bdmc}-T{t}-C{args.chains}-L{args.leapfrog}|v2"

            def run_bdmc(t=t, vae=vae, x=x) -> BDMCEvaluation:
                result = bdmc(
                    vae.model,
                    vae.guide,
                    x[: args.bdmc],
                    num_steps=t,
                    num_chains=args.chains,
                    num_leapfrog=args.leapfrog,
                    num_samples=args.sample_sizes[0],
                    seed=args.seed,
                    progress=progress,
                )
                return result.summary()

            s = cached(key, BDMCEvaluation, run_bdmc)
            bdmc_lines.append(
                f"| {row.name} | {t} | {s.lower:.2f} ± {s.lower_mc_se:.2f} | "
                f"{s.upper:.2f} ± {s.upper_mc_se:.2f} | "
                f"{s.gap:.2f} ± {s.gap_se:.2f} | {s.gap_interval_below_zero} | "
                f"{-s.lower_minus_is:+.2f} ± {s.lower_minus_is_se:.2f} |"
            )
            print(bdmc_lines[-1], flush=True)
    order_lines = ["", "Ranking of the models (best first) by each estimator:", ""]
    for name, scores in ranking.items():
        order = sorted(scores, key=scores.get, reverse=True)
        order_lines.append(f"- {name}: " + " > ".join(order))
    text = "\n".join(lines + bdmc_lines + order_lines) + "\n"
    atomic_write_text(out_dir / "ais_vs_is.md", text)
    print(text)


if __name__ == "__main__":
    main()
