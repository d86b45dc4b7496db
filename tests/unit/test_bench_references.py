"""The benchmarks' hand-written references compute the model they are compared with.

A speed ratio against a plain-PyTorch loop means something only if both compute the same
numbers: ``experiments/bench_ais.py`` once timed the library on the default model (a mixture
prior) against a hand-written loop on N(0, I). These tests hold each reference to the library's
own densities and losses, for every prior the benchmarks time.
"""

from __future__ import annotations

import pyro
import pytest
import torch
from helpers import experiment_module

from pyro_vae import ModelConfig, build_vae


@pytest.mark.parametrize("prior", ["normal", "mog"])
def test_the_hand_written_ais_densities_are_the_librarys(prior):
    """log q(z|x) and log p(x, z), and their gradients in z, of ``bench_ais``'s loop equal the
    ones the library's AIS anneals between (traced Pyro model and guide), at points off the
    guide's draws; so a prior written wrongly by hand (or left out) fails here."""
    bench_ais = experiment_module("bench_ais")
    torch.manual_seed(0)
    vae = build_vae(ModelConfig(prior=prior, hidden=[32], latent_dim=4), 16).eval()
    x = torch.bernoulli(torch.full((5, 16), 0.4))
    chains = 3
    with pyro.validation_enabled(False):
        densities, z0 = bench_ais.library_densities(vae, x, chains)
        z = (z0 + 0.7 * torch.randn_like(z0)).requires_grad_(True)
        library = densities(z)
    hand, _, _ = bench_ais.hand_written_densities(vae, x)
    by_hand = hand(z)
    for ours, theirs in zip(library, by_hand, strict=True):
        assert ours.shape == theirs.shape == (chains, len(x))
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-4)
        (g_ours,) = torch.autograd.grad(ours.sum(), z, retain_graph=True)
        (g_theirs,) = torch.autograd.grad(theirs.sum(), z, retain_graph=True)
        torch.testing.assert_close(g_ours, g_theirs, rtol=1e-5, atol=1e-5)


def test_the_hand_written_mixture_prior_is_the_librarys():
    """``bench_training.mixture_log_prior`` (the hand-written loops' default prior) equals the
    library's MixtureOfGaussiansPrior log-density, with trained-looking (unequal) weights."""
    bench_training = experiment_module("bench_training")
    torch.manual_seed(1)
    vae = build_vae(ModelConfig(prior="mog", latent_dim=3, hidden=[8]), 10)
    with torch.no_grad():
        vae.prior.logits.copy_(torch.randn_like(vae.prior.logits))
        vae.prior.raw_scales.add_(0.3 * torch.randn_like(vae.prior.raw_scales))
    z = 2 * torch.randn(4, 6, 3)
    torch.testing.assert_close(
        bench_training.mixture_log_prior(vae.prior, z), vae.prior().log_prob(z)
    )
