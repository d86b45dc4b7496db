"""Benchmark: the cost of estimating log p(x) through Pyro's traces.

K importance samples for each of the 10,000 Fashion-MNIST test images (statically binarized),
784-400-20 MLP VAE with a Bernoulli likelihood. Variants, alternated ``--repeats`` times, medians
reported:

* ``torch``          hand-written batched PyTorch: encoder once per data batch, K x batch
                     reparameterized draws, decoder, log p(x|z) + log p(z) - log q(z|x), then
                     logsumexp over K: the practical limit on this machine;
* ``pyro``           ``pyro_vae.log_marginal`` with ``diagnostics=False``: the same numbers
                     through Pyro's vectorized traces (log p(x), ELBO, ESS);
* ``pyro+khat``      ``pyro_vae.log_marginal`` as ``pyro-vae evaluate`` runs it, with a Pareto
                     k-hat fit per image.

Both use the same data batches (100 images) and particle chunks (16,384 rows per pass). Prints
(images x samples) per second and the ratio to ``torch`` (target: pyro >= 0.8).

    python experiments/bench_marginal.py [--num-samples 1000] [--num-images 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import pyro
import torch
import torch.nn.functional as F
from common import get_args_parser

from pyro_vae import ModelConfig, build_vae, eval_view, load_dataset, log_marginal
from pyro_vae.infer.training import resolve_device

LOG_2PI = math.log(2 * math.pi)


@torch.no_grad()
def torch_log_marginal(vae, x, num_samples, batch_size, max_rows) -> torch.Tensor:
    """Per-image log (1/K) sum_k w_k with the same networks, in plain batched PyTorch."""
    chunk = min(num_samples, max(1, max_rows // batch_size))
    out = []
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size]
        loc, raw_scale = vae.encoder.net(xb).chunk(2, dim=-1)
        scale = F.softplus(raw_scale) + vae.encoder.min_scale
        pieces = []
        for k0 in range(0, num_samples, chunk):
            c = min(chunk, num_samples - k0)
            z = loc + scale * torch.randn((c, *loc.shape), device=x.device)
            logits = vae.decoder(z)
            log_lik = -F.binary_cross_entropy_with_logits(
                logits, xb.expand_as(logits), reduction="none"
            ).sum(-1)
            log_prior = (-0.5 * z.pow(2) - 0.5 * LOG_2PI).sum(-1)
            log_q = (-0.5 * ((z - loc) / scale).pow(2) - scale.log() - 0.5 * LOG_2PI).sum(-1)
            pieces.append(log_lik + log_prior - log_q)
        log_w = torch.cat(pieces).double()
        out.append(torch.logsumexp(log_w, 0) - math.log(num_samples))
    return torch.cat(out)


def main() -> None:
    shared = get_args_parser(device="cpu", dataset="fashion-mnist", num_samples=1000)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[shared])
    parser.add_argument("--num-images", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--max-rows", type=int, default=16384)
    parser.add_argument("--variants", nargs="+", default=["torch", "pyro", "pyro+khat"])
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)

    data = load_dataset(args.dataset, download=False)
    x = eval_view(data.test, data.levels, "static", "test")[: args.num_images].to(device)
    pyro.set_rng_seed(0)
    vae = build_vae(ModelConfig(latent_dim=20, hidden=[400]), data.data_dim).to(device).eval()
    k, n = args.num_samples, len(x)
    common = dict(batch_size=args.batch_size, max_rows=args.max_rows)

    def run_pyro(diagnostics: bool) -> torch.Tensor:
        with pyro.validation_enabled(False):
            estimate = log_marginal(vae.model, vae.guide, x, k, diagnostics=diagnostics, **common)
        return estimate.log_px

    runners = {
        "torch": lambda: torch_log_marginal(vae, x, k, args.batch_size, args.max_rows),
        "pyro": lambda: run_pyro(False),
        "pyro+khat": lambda: run_pyro(True),
    }
    print(
        f"{args.dataset}: {n} test images x K={k}, 784-400-20 MLP, {device}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, pyro {pyro.__version__}; "
        f"{args.repeats} alternating repeats"
    )
    results: dict[str, list[float]] = {v: [] for v in args.variants}
    estimates: dict[str, float] = {}
    for r in range(args.repeats):
        for variant in args.variants:
            start = time.perf_counter()
            log_px = runners[variant]()
            results[variant].append(n * k / (time.perf_counter() - start))
            estimates[variant] = log_px.mean().item()
        print(f"  repeat {r + 1}: " + "  ".join(f"{v} {results[v][-1]:9.0f}" for v in results))
    reference = statistics.median(results["torch"]) if "torch" in results else float("nan")
    print(f"\n{'variant':10s} {'(images x samples)/s':>21s} {'ratio':>7s} {'mean log p(x)':>14s}")
    summary = []
    for variant, values in results.items():
        median = statistics.median(values)
        summary.append(
            {
                "variant": variant,
                "rate": median,
                "ratio": median / reference,
                "mean_log_px": estimates[variant],
                "all": values,
            }
        )
        print(f"{variant:10s} {median:21.0f} {median / reference:7.3f} {estimates[variant]:14.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"num_samples": k, "num_images": n, "results": summary}, f, indent=2)


if __name__ == "__main__":
    main()
