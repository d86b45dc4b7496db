"""The VAE's density by quadrature over z, and the 2-D toy data."""

from __future__ import annotations

import pyro.distributions as dist
import pytest
import torch

from pyro_vae import MLP, VAE, DiagonalGaussianGuide, StandardNormalPrior, log_marginal
from pyro_vae.data.toy import TOY_DATASETS, make_toy
from pyro_vae.model.continuous_mixture import log_density_by_quadrature, prior_quantile_grid
from pyro_vae.model.likelihoods import GaussianLikelihood, LearnedGaussianLikelihood


def test_prior_quantile_grid_is_an_equal_weight_quadrature_of_the_prior():
    z = prior_quantile_grid(1, 1000)
    assert z.shape == (1000, 1)
    assert z.mean().abs() < 1e-5 and abs(z.var().item() - 1) < 0.01
    assert prior_quantile_grid(2, 30).shape == (900, 2)
    with pytest.raises(ValueError, match="1 or 2 latent dimensions"):
        prior_quantile_grid(3, 10)


def linear_vae(latent_dim: int, sigma: float = 0.3) -> VAE:
    torch.manual_seed(0)
    return VAE(
        StandardNormalPrior(latent_dim),
        DiagonalGaussianGuide(3, latent_dim, [8]),
        MLP(latent_dim, [], 3),  # a linear decoder: x | z ~ N(W z + b, sigma^2 I)
        GaussianLikelihood(sigma, link="identity"),
    )


@pytest.mark.parametrize("latent_dim,per_dim", [(1, 4000), (2, 400)])
def test_quadrature_reproduces_the_exact_marginal_of_a_linear_decoder(latent_dim, per_dim):
    vae = linear_vae(latent_dim)
    layer = vae.decoder[0]
    w, b = layer.weight.detach(), layer.bias.detach()
    exact = dist.MultivariateNormal(b, w @ w.T + 0.09 * torch.eye(3))
    x = exact.sample((50,))
    quad = log_density_by_quadrature(vae, x, per_dim=per_dim)
    # the grid reaches |z| <= Phi^-1(1 - 1/(2 per_dim)): errors come from the prior's tails
    assert torch.allclose(quad, exact.log_prob(x), atol=0.01)
    assert (quad - exact.log_prob(x)).abs().median() < 1e-4


def test_quadrature_agrees_with_importance_sampling():
    torch.manual_seed(1)
    vae = VAE(
        StandardNormalPrior(1),
        DiagonalGaussianGuide(2, 1, [16]),
        MLP(1, [16], 4),
        LearnedGaussianLikelihood(0.05, link="identity"),
    )
    x = torch.randn(40, 2)
    quad = log_density_by_quadrature(vae, x, per_dim=4000)
    est = log_marginal(vae.model, vae.guide, x, 20000, seed=0)
    tolerance = 4 * est.mc_se + 0.01
    # the standard error holds where k-hat < 0.7; elsewhere IS is only a stochastic lower bound
    reliable = est.khat < 0.7
    assert int(reliable.sum()) >= 30
    assert ((quad - est.log_px).abs() < tolerance)[reliable].all()
    assert (est.log_px < quad + tolerance)[~reliable].all()


@pytest.mark.parametrize("name", sorted(TOY_DATASETS))
def test_toy_data_are_standardized_and_reproducible(name):
    a, b = make_toy(name, 500, seed=3), make_toy(name, 500, seed=3)
    assert a.shape == (500, 2) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, make_toy(name, 500, seed=4))
    assert torch.allclose(a.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(a.std(0, unbiased=False), torch.ones(2), atol=1e-4)


def test_unknown_toy_data_set():
    with pytest.raises(ValueError, match="unknown toy data set"):
        make_toy("swissroll", 10)


def test_quadrature_refuses_priors_other_than_the_standard_normal():
    from pyro_vae.model.priors import LearnedGaussianPrior

    vae = linear_vae(1)
    vae = VAE(LearnedGaussianPrior(1), vae.encoder, vae.decoder, vae.likelihood)
    with pytest.raises(ValueError, match="standard normal"):
        log_density_by_quadrature(vae, torch.zeros(2, 3))
