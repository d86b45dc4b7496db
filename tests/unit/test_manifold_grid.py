"""The manifold grid takes the quantiles of the model's own prior (issue 30, item 9: it used
N(0, 1)'s whatever the prior): exact for N(0, I), from seeded draws otherwise, leaving the
caller's random stream where it was."""

from __future__ import annotations

import torch

from pyro_vae.app.config import ModelConfig
from pyro_vae.app.vae_build import build_vae


def test_the_standard_normal_prior_keeps_its_exact_quantiles():
    vae = build_vae(ModelConfig(latent_dim=3, hidden=[8], prior="normal"), 16)
    axes, center = vae.latent_axes(5, (0, 2))
    probs = (torch.arange(5, dtype=torch.float64) + 0.5) / 5
    expected = torch.distributions.Normal(0.0, 1.0).icdf(probs).float()
    assert torch.equal(axes[0], expected) and torch.equal(axes[1], expected)
    assert torch.equal(center, torch.zeros(3))


def test_a_mixture_prior_gets_its_own_quantiles_without_moving_the_random_stream():
    torch.manual_seed(0)
    vae = build_vae(ModelConfig(latent_dim=2, hidden=[8], prior="mog"), 16)
    with torch.no_grad():
        for p in vae.prior.parameters():  # spread the components far from N(0, 1)
            p.add_(torch.randn_like(p) * 3)
    before = torch.random.get_rng_state()
    axes, center = vae.latent_axes(9, (0, 1))
    assert torch.equal(torch.random.get_rng_state(), before)
    with torch.no_grad():
        z = vae.prior().sample((200_000,))
    for d in range(2):
        cdf = (z[:, d].unsqueeze(-1) <= axes[d]).double().mean(0)  # the prior's CDF at each
        target = (torch.arange(9, dtype=torch.float64) + 0.5) / 9
        se = (target * (1 - target) / 20_000).sqrt()  # the quantiles came from 20,000 draws
        assert ((cdf - target).abs() < 5 * se + 1e-3).all(), (d, cdf, target)
    assert vae.latent_grid_means(4, (0, 1)).shape == (16, 16)
