"""Calibration: are AIS's bounds bounds, is its stated error honest, and does its reliability
flag say when not? Checked where log p(x) is known exactly.

A linear-Gaussian model z ~ N(0, I_k), x | z ~ N(W z + b, s^2 I_D), written in Pyro, for
several latent sizes k; N points simulated from it (z* ~ p(z), x ~ p(x | z*), so each z* is an
exact posterior sample); a good guide (posterior mean shifted by 0.5 posterior sd, 1.2x too
wide), a poor one (shifted by 2 sd, half as wide: heavy-tailed weights) and the prior as
starting distributions. Every estimate is repeated R times independently (the N points are
copied R times; each copy's draws are keyed by its own index, so the copies are independent
runs). Per row: the mean over points of (estimate - exact log p(x)), averaged over the R
repetitions, ± its standard error (over repetitions); the Monte Carlo error AIS states for
that mean (averaged over repetitions) against the spread actually observed over repetitions;
and in how many repetitions the AIS reliability flag said reliable (every point's ESS over
chains >= half the chains).

    python experiments/ais_calibration.py [--points 20] [--repeats 20] [--chains 8]

Prints a Markdown table; forward AIS must sit at or below 0 (within 3 standard errors), reverse
AIS at or above 0, both approaching 0 as T grows; IS's bias shrinks with K.
"""

from __future__ import annotations

import argparse
import math
import time

import pyro
import pyro.distributions as dist
import torch

from pyro_vae.infer.ais import log_marginal_ais
from pyro_vae.infer.marginal import log_marginal


class LinearGaussian:
    """z ~ N(0, I_k), x | z ~ N(W z + b, s^2 I_D): x ~ N(b, W W^T + s^2 I)."""

    def __init__(self, k: int, d: int, noise: float = 0.5, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.k, self.d, self.s = k, d, noise
        self.W = torch.randn(d, k, generator=g, dtype=torch.float64) / math.sqrt(k)
        self.b = torch.randn(d, generator=g, dtype=torch.float64)
        eye = torch.eye(k, dtype=torch.float64)
        self.post_cov = torch.linalg.inv(eye + self.W.T @ self.W / noise**2)

    def model(self, x: torch.Tensor) -> None:
        zeros = torch.zeros(self.k, dtype=torch.float64)
        with pyro.plate("data", len(x)):
            z = pyro.sample("z", dist.Normal(zeros, 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z @ self.W.T + self.b, self.s).to_event(1), obs=x)

    def guide(self, offset: float, scale: float):
        sd = self.post_cov.diagonal().sqrt()

        def guide(x: torch.Tensor) -> None:
            loc = (x - self.b) @ self.W / self.s**2 @ self.post_cov + offset * sd
            with pyro.plate("data", len(x)):
                pyro.sample("z", dist.Normal(loc, scale * sd).to_event(1))

        return guide

    def simulate(self, n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.k, generator=g, dtype=torch.float64)
        noise = self.s * torch.randn(n, self.d, generator=g, dtype=torch.float64)
        return z @ self.W.T + self.b + noise, z

    def log_px(self, x: torch.Tensor) -> torch.Tensor:
        cov = self.W @ self.W.T + self.s**2 * torch.eye(self.d, dtype=torch.float64)
        return dist.MultivariateNormal(self.b, covariance_matrix=cov).log_prob(x)


GUIDES = {"good guide": (0.5, 1.2), "poor guide": (2.0, 0.5)}


def per_repetition(values: torch.Tensor, repeats: int) -> torch.Tensor:
    """``[R * N]`` per-point values -> ``[R]`` means over the N points of each repetition."""
    return values.reshape(repeats, -1).double().mean(1)


def mean_se(t: torch.Tensor) -> tuple[float, float]:
    return t.mean().item(), t.std().item() / math.sqrt(len(t))


def ais_rows(lg, name, guide, start, x, z, truth, args) -> list[str]:
    rows = []
    r = args.repeats
    for t in args.steps:
        cells = []
        stated, observed, flags = [], [], []
        for reverse in (False, True):
            est = log_marginal_ais(
                lg.model,
                guide,
                x,
                num_steps=t,
                num_chains=args.chains,
                num_leapfrog=args.leapfrog,
                start=start,
                batch_size=len(x),
                seed=args.seed,
                init=z if reverse else None,
            )
            err = per_repetition(est.log_px - truth, r)
            m, se = mean_se(err)
            ok = m <= 3 * se if not reverse else m >= -3 * se
            cells.append(f"{m:+.3f} ± {se:.3f} {'✓' if ok else '✗'}")
            # the stated MC error of each repetition's mean over its N points
            mc = est.mc_se.reshape(r, -1).double()
            stated.append((mc.pow(2).sum(1).sqrt() / mc.shape[1]).mean().item())
            observed.append(err.std().item())
            flags.append(int(est.reliable.reshape(r, -1).all(1).sum()))
        ratio = [o / s if s > 0 else math.inf for o, s in zip(observed, stated, strict=True)]
        rows.append(
            f"| {lg.k} | {name} | {t} | {cells[0]} | {cells[1]} | "
            f"{stated[0]:.3f} / {observed[0]:.3f} ({ratio[0]:.2f}) | {flags[0]}/{r} | "
            f"{stated[1]:.3f} / {observed[1]:.3f} ({ratio[1]:.2f}) | {flags[1]}/{r} |"
        )
        print(rows[-1], flush=True)
    return rows


def is_rows(lg, name, guide, x, truth, args) -> list[str]:
    rows = []
    n = len(x) // args.repeats
    for k in args.samples:
        est = log_marginal(lg.model, guide, x, k, batch_size=n, seed=args.seed)
        m, se = mean_se(per_repetition(est.log_px - truth, args.repeats))
        rows.append(f"| {lg.k} | {name} | IS, K = {k} | {m:+.3f} ± {se:.3f} |")
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latent", type=int, nargs="+", default=[2, 8], metavar="k")
    parser.add_argument("--data-dim", type=int, default=16, metavar="D")
    parser.add_argument("--points", type=int, default=20, metavar="N")
    parser.add_argument("--repeats", type=int, default=20, metavar="R")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 30, 100, 300, 500])
    parser.add_argument("--chains", type=int, default=8, metavar="C")
    parser.add_argument("--leapfrog", type=int, default=5, metavar="L")
    parser.add_argument("--samples", type=int, nargs="+", default=[10, 100, 1000], metavar="K")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    print(
        f"Linear-Gaussian model, D = {args.data_dim}; N = {args.points} simulated points, "
        f"R = {args.repeats} independent repetitions; AIS with C = {args.chains} chains, "
        f"L = {args.leapfrog} leapfrog steps. Errors: estimate − exact log p(x), mean over points, "
        "± standard error over repetitions (✓: forward ≤ 0, reverse ≥ 0 within 3 standard "
        "errors). MC error: stated / observed over repetitions (observed ÷ stated); reliable: "
        "repetitions whose every point the flag calls reliable.\n"
    )
    print(
        "| k | start | T | forward AIS error | reverse AIS error | forward MC error "
        "| forward reliable | reverse MC error | reverse reliable |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    is_lines = []
    for k in args.latent:
        lg = LinearGaussian(k, args.data_dim)
        x, z = lg.simulate(args.points)
        x, z = x.repeat(args.repeats, 1), z.repeat(args.repeats, 1)
        truth = lg.log_px(x)
        for name, (offset, scale) in GUIDES.items():
            guide = lg.guide(offset, scale)
            ais_rows(lg, name, guide, "guide", x, z, truth, args)
            is_lines += [(lg, name, guide, x, truth)]
        ais_rows(lg, "prior", lg.guide(0.0, 1.0), "prior", x, z, truth, args)
    print("\nImportance sampling with the same guides (same points and repetitions):\n")
    print("| k | guide | estimator | error |\n|---|---|---|---|")
    for lg, name, guide, x, truth in is_lines:
        is_rows(lg, name, guide, x, truth, args)
    print(f"\n({time.perf_counter() - started:.0f} s, {torch.get_num_threads()} thread(s))")


if __name__ == "__main__":
    main()
