"""Benchmark: gradient evaluations per second of pyro-vae's AIS loop against a hand-written
batched PyTorch HMC-AIS loop for the same MLP VAE (784-400-20, Bernoulli likelihood), measured
in the same run.

Both run the same algorithm: a pilot run (C unweighted chains per image, min(T, 50) steps plus
a warm-up) that tunes a per-image step size towards acceptance 0.65 along the schedule, then the
annealing run with those step sizes frozen: C chains per image started from the guide, T
intermediate distributions on the sigmoid schedule, one HMC transition of L leapfrog steps per
step. The hand-written loop knows the model:
it runs the encoder once, then only the decoder with closed-form log-densities (the prior's
too: N(0, I), or the default mixture of 10 Gaussians written in plain torch). The library's loop
knows only the Pyro model and guide (traces, plates, conditioning). A gradient evaluation is one
(chain, image) pair's log-density and gradient at one leapfrog position.

    python experiments/bench_ais.py [--images 100] [--chains 8] [--steps 20] [--repeats 3]
                                    [--prior both|normal|mog]

Prints, for each prior, seconds, gradient evaluations/s and the ratio (target >= 0.8), the
estimated time for the whole 10,000-image test set at the given settings, and the time of one
gradient evaluation alone (library against hand-written, at the same points).
"""

from __future__ import annotations

import argparse
import bisect
import math
import statistics
import time

import pyro
import torch
import torch.nn.functional as F
from bench_training import mixture_log_prior

from pyro_vae import ModelConfig, build_vae
from pyro_vae.infer.ais import log_marginal_ais
from pyro_vae.infer.annealed_target import AnnealedTarget
from pyro_vae.infer.hmc import (
    ADAPT_RATE,
    PILOT_STEPS,
    TARGET_ACCEPT,
    WARMUP,
    evaluate_state,
    pilot_transitions,
    sigmoid_schedule,
)
from pyro_vae.model.priors import MixtureOfGaussiansPrior


def standard_normal_log_prior(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), by hand."""
    return (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(-1)


def hand_written_densities(vae, x: torch.Tensor):
    """z ``[C, B, D]`` -> (log q(z|x), log p(x, z)), each ``[C, B]``, in plain PyTorch over the
    library's MLP VAE: the encoder run once, then only the decoder and closed-form
    log-densities (the prior's by hand: N(0, I) or the mixture of Gaussians)."""
    with torch.no_grad():
        q = vae.encoder(x)  # Independent(Normal(loc, scale), 1)
        loc, scale = q.base_dist.loc, q.base_dist.scale
    decoder = vae.decoder
    if isinstance(vae.prior, MixtureOfGaussiansPrior):

        def log_prior_of(z):
            return mixture_log_prior(vae.prior, z)

    else:
        log_prior_of = standard_normal_log_prior

    def densities(z):
        log_q = (-0.5 * ((z - loc) / scale) ** 2 - scale.log() - 0.5 * math.log(2 * math.pi)).sum(
            -1
        )
        logits = decoder(z)
        log_lik = -F.binary_cross_entropy_with_logits(
            logits, x.expand_as(logits), reduction="none"
        ).sum(-1)
        return log_q, log_prior_of(z) + log_lik

    return densities, loc, scale


def hand_written_ais(vae, x: torch.Tensor, steps: int, chains: int, leapfrog: int, eps0: float):
    """Plain-PyTorch AIS from the guide for the library's MLP VAE
    (:func:`hand_written_densities` at every leapfrog position); a pilot run tunes the per-image
    step sizes, which the annealing run then uses frozen (as the library does)."""
    densities, loc, scale = hand_written_densities(vae, x)
    b, d = loc.shape

    def evaluate(z):
        z = z.detach().requires_grad_(True)
        base, joint = densities(z)
        (g_base,) = torch.autograd.grad(base.sum(), z, retain_graph=True)
        (g_joint,) = torch.autograd.grad(joint.sum(), z)
        return z.detach(), base.detach(), joint.detach(), g_base, g_joint

    def transition(s, beta, eps):
        z, base, joint, g_base, g_joint = s
        e = eps.reshape(1, -1, 1)
        p0 = torch.randn_like(z)
        p = p0 + 0.5 * e * ((1 - beta) * g_base + beta * g_joint)
        z1, b1, j1, gb1, gj1 = s
        for step in range(leapfrog):
            z1, b1, j1, gb1, gj1 = evaluate(z1 + e * p)
            g = (1 - beta) * gb1 + beta * gj1
            p = p + (e if step < leapfrog - 1 else 0.5 * e) * g
        h0 = -((1 - beta) * base + beta * joint) + 0.5 * p0.pow(2).sum(-1)
        h1 = -((1 - beta) * b1 + beta * j1) + 0.5 * p.pow(2).sum(-1)
        log_acc = torch.nan_to_num(h0 - h1, nan=-math.inf).clamp(max=0)
        a = (torch.rand_like(log_acc).log() < log_acc).unsqueeze(-1)
        new = (
            torch.where(a, z1, z),
            torch.where(a[..., 0], b1, base),
            torch.where(a[..., 0], j1, joint),
            torch.where(a, gb1, g_base),
            torch.where(a, gj1, g_joint),
        )
        return new, log_acc.exp().mean(0)

    # the pilot: unweighted chains, the step size adapted after every transition
    pilot = min(steps, PILOT_STEPS)
    pilot_betas = sigmoid_schedule(pilot)[1:pilot].tolist() if pilot >= 2 else []
    s = evaluate(loc + scale * torch.randn(chains, b, d))
    log_eps, tuned = torch.full((b,), math.log(eps0)), []
    for i, beta in enumerate(pilot_betas[:1] * WARMUP + pilot_betas):
        s, acc = transition(s, beta, log_eps.exp())
        log_eps = log_eps + ADAPT_RATE * (acc - TARGET_ACCEPT)
        if i >= WARMUP:
            tuned.append(log_eps)
    # the annealing run with the tuned step sizes, interpolated in beta, frozen
    betas = sigmoid_schedule(steps).tolist()
    s = evaluate(loc + scale * torch.randn(chains, b, d))
    log_w = torch.zeros(chains, b, dtype=torch.float64)
    for t in range(1, steps + 1):
        log_w += (betas[t] - betas[t - 1]) * (s[2] - s[1]).double()
        if t == steps:
            break
        hi = bisect.bisect_right(pilot_betas, betas[t])
        if hi == 0 or hi == len(pilot_betas):
            le = tuned[min(hi, len(tuned) - 1)]
        else:
            w = (betas[t] - pilot_betas[hi - 1]) / (pilot_betas[hi] - pilot_betas[hi - 1])
            le = (1 - w) * tuned[hi - 1] + w * tuned[hi]
        s, _ = transition(s, betas[t], le.exp())
    return torch.logsumexp(log_w, 0) - math.log(chains)


def library_densities(vae, x: torch.Tensor, chains: int):
    """The library's AIS target from the guide for ``x`` (traced Pyro model and guide, the
    guide traced once as ``log_marginal_ais`` does): the function z ``[C, B, D]`` ->
    (log q(z|x), log p(x, z)), and C draws per point from the guide to evaluate it at. Call
    with Pyro's validation off, as AIS runs."""
    target = AnnealedTarget(vae.model, vae.guide, chains, "guide", (), {}, "data", 1)
    z0 = torch.cat([target.flatten(target.initial(x[i : i + 1])) for i in range(len(x))], 1)
    target.prepare(x, z0)
    return (lambda z: target.log_densities(z, x)), z0


def evaluation_ms(vae, x: torch.Tensor, chains: int, repeats: int) -> dict[str, float]:
    """Milliseconds of one gradient evaluation of all C x B pairs (both log-densities and their
    gradients, as the leapfrog steps take them), the library's traced target against
    :func:`hand_written_densities` at the same points; alternated, medians of ``repeats``
    blocks of 20."""
    with pyro.validation_enabled(False):
        library, z0 = library_densities(vae, x, chains)
        hand, _, _ = hand_written_densities(vae, x)
        loops = {"plain PyTorch": hand, "pyro-vae": library}
        times: dict[str, list[float]] = {name: [] for name in loops}
        for _ in range(repeats):
            for name, density in loops.items():
                start = time.perf_counter()
                for _ in range(20):
                    evaluate_state(density, z0)
                times[name].append((time.perf_counter() - start) / 20 * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


PRIORS = {"normal": "N(0, I) prior", "mog": "mixture of 10 Gaussians (the default)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--chains", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--leapfrog", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--prior", choices=["both", *PRIORS], default="both")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pixels = torch.full((args.images, 784), 0.3)
    x = torch.bernoulli(pixels, generator=torch.Generator().manual_seed(0))
    transitions = args.steps - 1 + pilot_transitions(args.steps)  # the pilot's too
    evals = (2 + transitions * args.leapfrog) * args.chains * args.images
    print(
        f"AIS, {args.images} images x {args.chains} chains, T={args.steps}, L={args.leapfrog}: "
        f"{evals:,} gradient evaluations per run; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; median of {args.repeats}"
    )
    print("| prior | loop | seconds | gradient evaluations / s | ratio |\n|---|---|---|---|---|")
    for prior in PRIORS if args.prior == "both" else [args.prior]:
        torch.manual_seed(0)
        vae = build_vae(ModelConfig(prior=prior), 784).eval()  # 784-400-20
        times: dict[str, list[float]] = {"plain PyTorch": [], "pyro-vae": []}
        for _ in range(args.repeats):  # alternated, so that both see the same machine
            start = time.perf_counter()
            hand_written_ais(vae, x, args.steps, args.chains, args.leapfrog, 0.1)
            times["plain PyTorch"].append(time.perf_counter() - start)
            start = time.perf_counter()
            log_marginal_ais(
                vae.model,
                vae.guide,
                x,
                num_steps=args.steps,
                num_chains=args.chains,
                num_leapfrog=args.leapfrog,
                batch_size=args.images,
            )
            times["pyro-vae"].append(time.perf_counter() - start)
        reference = statistics.median(times["plain PyTorch"])
        for name, values in times.items():
            med = statistics.median(values)
            print(
                f"| {PRIORS[prior]} | {name} | {med:.2f} | {evals / med:,.0f} "
                f"| {reference / med:.3f} |"
            )
        per_image = statistics.median(times["pyro-vae"]) / args.images
        print(
            f"whole 10,000-image test set, {PRIORS[prior]}: about "
            f"{per_image * 10000 / 60:.0f} minutes (pyro-vae loop)"
        )
        ms = evaluation_ms(vae, x, args.chains, args.repeats)
        print(
            f"one gradient evaluation of {args.chains} x {args.images} pairs, {PRIORS[prior]}: "
            f"{ms['plain PyTorch']:.1f} ms plain PyTorch, {ms['pyro-vae']:.1f} ms pyro-vae "
            f"(ratio {ms['plain PyTorch'] / ms['pyro-vae']:.3f})"
        )


if __name__ == "__main__":
    main()
