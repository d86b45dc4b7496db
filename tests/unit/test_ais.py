"""Annealed importance sampling and BDMC, checked where log p(x) is known exactly."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import LinearGaussian

from pyro_vae import ModelConfig, build_vae
from pyro_vae.infer.ais import State, hmc_transition, log_marginal_ais, sigmoid_schedule
from pyro_vae.infer.bdmc import bdmc, simulate
from pyro_vae.infer.hmc import transition_noise
from pyro_vae.infer.marginal import log_marginal, mean_and_se


@pytest.fixture(scope="module")
def lg():
    return LinearGaussian()


def test_sigmoid_schedule_runs_from_zero_to_one_increasing():
    beta = sigmoid_schedule(50)
    assert beta[0] == 0.0 and beta[-1] == 1.0 and len(beta) == 51
    assert (beta.diff() > 0).all()
    # denser at both ends than in the middle
    assert beta.diff()[0] < beta.diff()[25] and beta.diff()[-1] < beta.diff()[25]
    with pytest.raises(ValueError):
        sigmoid_schedule(0)


@pytest.mark.parametrize("steps", [1, 3, 20])
def test_started_at_the_exact_posterior_ais_is_exact_at_any_number_of_steps(lg, steps):
    """With pi_0 = p(z|x), every increment is (beta_t - beta_t-1) log p(x): each chain's weight
    is p(x) whatever the transitions do."""
    x = lg.data(12)
    est = log_marginal_ais(lg.model, lg.exact_guide, x, num_steps=steps, num_chains=4)
    assert torch.allclose(est.log_px, lg.log_px(x), atol=1e-9)
    assert torch.allclose(est.ess, torch.full_like(est.ess, 4.0))


def test_from_the_prior_with_many_steps_it_is_within_three_monte_carlo_errors(lg):
    x = lg.data(20)
    est = log_marginal_ais(
        lg.model, lg.exact_guide, x, num_steps=100, num_chains=16, start="prior", seed=1
    )
    err = (est.log_px - lg.log_px(x)).mean().item()
    mc_se = est.summary().log_px_mc_se
    assert abs(err) < 3 * mc_se, (err, mc_se)
    assert 0.4 < est.acceptance.mean() < 0.95  # the pilot tuned the step size towards 0.65
    # the same budget without annealing (T = 1: importance sampling from the prior with 16
    # draws) is far worse: AIS did the work
    plain = log_marginal_ais(lg.model, lg.exact_guide, x, num_steps=1, num_chains=16, start="prior")
    assert (lg.log_px(x) - plain.log_px).mean() > 10 * mc_se


def test_a_poor_guide_is_corrected_by_annealing(lg):
    """A guide off-centre by 2 posterior sd and too narrow: IS with 16 draws is nats below
    the truth; AIS with 16 chains and T = 100 recovers all but a few percent of that, from
    below (a stochastic lower bound)."""
    x = lg.data(20)
    guide = lg.shifted_guide(2.0, 0.7)
    is_est = log_marginal(lg.model, guide, x, 16, seed=0)
    ais = log_marginal_ais(lg.model, guide, x, num_steps=100, num_chains=16, seed=0)
    truth = lg.log_px(x)
    mc_se = ais.summary().log_px_mc_se
    ais_err = (ais.log_px - truth).mean().item()
    is_gap, is_gap_se = mean_and_se(truth - is_est.log_px)
    assert is_gap > 1.0 and is_gap > 3 * is_gap_se, (is_gap, is_gap_se)
    assert ais_err < 3 * mc_se and abs(ais_err) < is_gap / 10, (ais_err, mc_se, is_gap)


def test_hmc_leaves_a_known_gaussian_invariant():
    """Chains started from N(m, diag s^2) and moved by 30 HMC transitions are still
    N(m, diag s^2): means and variances within 4 standard errors over 4,000 chains."""
    m = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    s = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    chains, points = 1000, 4

    def density(z):  # base = joint: the target is the same at every beta
        log_p = (-0.5 * ((z - m) / s) ** 2 - s.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
        return log_p, log_p

    g = torch.Generator().manual_seed(0)
    z0 = m + s * torch.randn(chains, points, 3, generator=g, dtype=torch.float64)
    from pyro_vae.infer.ais import evaluate_state

    state = evaluate_state(density, z0)
    index = torch.arange(points)
    eps = torch.full((points,), 0.4, dtype=torch.float64)
    accepted = []
    for t in range(30):
        momentum, log_u = transition_noise(0, index, t, "forward", (chains, points, 3))
        state, acc = hmc_transition(state, 1.0, eps, 5, density, momentum, log_u)
        accepted.append(acc.mean().item())
    z = state.z.reshape(-1, 3)
    n = len(z)
    assert ((z.mean(0) - m).abs() < 4 * s / math.sqrt(n)).all()
    # var of the sample variance of a normal: 2 s^4 / (n - 1)
    assert ((z.var(0) - s**2).abs() < 4 * s**2 * math.sqrt(2 / (n - 1))).all()
    assert (state.z != z0).float().mean() > 0.5  # the chains moved
    assert 0.3 < sum(accepted) / len(accepted) < 1.0


def test_results_do_not_depend_on_how_points_are_batched_or_sharded(lg):
    x = lg.data(10)
    guide = lg.shifted_guide(0.5, 1.5)
    whole = log_marginal_ais(lg.model, guide, x, num_steps=20, num_chains=4, seed=3)
    small = log_marginal_ais(lg.model, guide, x, num_steps=20, num_chains=4, seed=3, batch_size=3)
    tail = log_marginal_ais(
        lg.model, guide, x[6:], num_steps=20, num_chains=4, seed=3, index_offset=6
    )
    assert torch.allclose(whole.log_px, small.log_px, atol=1e-10)
    assert torch.allclose(whole.log_px[6:], tail.log_px, atol=1e-10)
    other = log_marginal_ais(lg.model, guide, x, num_steps=20, num_chains=4, seed=4)
    assert not torch.allclose(whole.log_px, other.log_px)


def test_bdmc_brackets_the_truth_and_its_gap_shrinks_with_more_steps(lg):
    guide = lg.shifted_guide(2.0, 3.0)
    x_like = lg.data(30)
    x_sim, z_star = simulate(lg.model, guide, x_like, seed=0)
    assert x_sim.shape == x_like.shape and z_star.shape == (30, 2)
    truth = lg.log_px(x_sim)
    gaps = {}
    for steps in (2, 50):
        result = bdmc(lg.model, guide, x_like, num_steps=steps, num_chains=8, num_samples=50)
        lower, upper = result.forward, result.reverse
        lower_mc = lower.summary().log_px_mc_se
        upper_mc = upper.summary().log_px_mc_se
        assert (lower.log_px - truth).mean() < 3 * lower_mc
        assert (upper.log_px - truth).mean() > -3 * upper_mc
        gaps[steps] = result.summary()
        assert gaps[steps].is_num_samples == 50
    gap_se = math.hypot(gaps[2].gap_se, gaps[50].gap_se)
    assert gaps[2].gap - gaps[50].gap > 3 * gap_se, gaps


def test_on_a_vae_ais_tightens_the_importance_sampled_bound():
    torch.manual_seed(0)
    vae = build_vae(ModelConfig(latent_dim=3, hidden=[16]), 20)
    x = torch.bernoulli(torch.full((6, 20), 0.3), generator=torch.Generator().manual_seed(0))
    elbo = log_marginal(vae.model, vae.guide, x, 200, seed=0)
    ais = log_marginal_ais(vae.model, vae.guide, x, num_steps=50, num_chains=8)
    assert ais.log_px.shape == (6,) and torch.isfinite(ais.log_px).all()
    assert (ais.log_px - elbo.elbo).mean() > 0  # above the ELBO
    assert abs((ais.log_px - elbo.log_px).mean()) < 1.0  # and where IS with K=200 puts it


def test_two_latent_sites_are_annealed_together():
    torch.manual_seed(0)
    vae = build_vae(ModelConfig(latent_dim=3, hidden=[16], prior="two-layer"), 20)
    x = torch.bernoulli(torch.full((4, 20), 0.3), generator=torch.Generator().manual_seed(0))
    ais = log_marginal_ais(vae.model, vae.guide, x, num_steps=10, num_chains=4)
    assert torch.isfinite(ais.log_px).all()
    x_sim, z_star = simulate(vae.model, vae.guide, x)
    assert set(x_sim.unique().tolist()) <= {0.0, 1.0}
    assert z_star.shape[0] == 4 and z_star.shape[1] > 3  # z and z2, flattened side by side


def test_a_guide_without_a_density_everywhere_is_refused_with_advice():
    torch.manual_seed(0)
    cfg = ModelConfig(latent_dim=2, hidden=[8], guide="flow", guide_kwargs={"flow_type": "planar"})
    vae = build_vae(cfg, 20)
    x = torch.bernoulli(torch.full((3, 20), 0.5))
    with pytest.raises(ValueError, match="start AIS from the prior"):
        log_marginal_ais(vae.model, vae.guide, x, num_steps=3, num_chains=2)
    est = log_marginal_ais(vae.model, vae.guide, x, num_steps=3, num_chains=2, start="prior")
    assert torch.isfinite(est.log_px).all()


def test_bad_arguments(lg):
    x = lg.data(3)
    for bad in ({"num_chains": 0}, {"num_leapfrog": 0}, {"num_steps": 0}, {"start": "middle"}):
        with pytest.raises(ValueError):
            log_marginal_ais(lg.model, lg.exact_guide, x, **bad)
    with pytest.raises(ValueError, match="NaN"):
        log_marginal_ais(lg.model, lg.exact_guide, x * float("nan"))
    assert isinstance(State, type)


@pytest.mark.parametrize("prior, cached", [("normal", True), ("two-layer", False)])
def test_the_guide_is_traced_once_per_batch_only_when_it_does_not_depend_on_z(prior, cached):
    from pyro_vae.infer.ais import AnnealedTarget

    torch.manual_seed(0)
    vae = build_vae(ModelConfig(latent_dim=3, hidden=[16], prior=prior), 20)
    x = torch.bernoulli(torch.full((4, 20), 0.3), generator=torch.Generator().manual_seed(0))
    target = AnnealedTarget(vae.model, vae.guide, 2, "guide", (), {}, "data", 1)
    z0 = target.flatten(target.initial(x))
    target.prepare(x, z0)
    assert (target._guide_sites is not None) == cached
    z = z0 + 0.3 * torch.randn_like(z0)
    fast = target.log_densities(z, x)
    target._guide_sites = None  # re-run the guide at every evaluation
    slow = target.log_densities(z, x)
    assert torch.allclose(fast[0], slow[0], atol=1e-5) and torch.equal(fast[1], slow[1])
