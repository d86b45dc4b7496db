"""The importance-sampling estimator of log p(x), checked where the truth is known."""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from helpers import LinearGaussian
from pyro.infer import RenyiELBO

from pyro_vae import ModelConfig, RunConfig, Trainer, build_vae, eval_view
from pyro_vae.infer import marginal as marginal_module
from pyro_vae.infer.marginal import log_marginal, pareto_khat


@pytest.fixture(scope="module")
def lg():
    return LinearGaussian()


@pytest.mark.parametrize("pixel_plate", [False, True])
@pytest.mark.parametrize("k", [1, 7, 100])
def test_exact_posterior_gives_the_exact_answer_for_any_k(k, pixel_plate):
    lg = LinearGaussian(pixel_plate=pixel_plate)
    x = lg.data(40)
    est = log_marginal(lg.model, lg.exact_guide, x, k, seed=0)
    truth = lg.log_px(x)
    assert torch.allclose(est.log_px, truth, atol=1e-9, rtol=0)  # zero-variance proposal
    assert torch.allclose(est.elbo, truth, atol=1e-9, rtol=0)
    assert torch.allclose(est.ess, torch.full_like(est.ess, k), rtol=1e-9)
    if k > 1:
        assert torch.all(est.mc_se < 1e-6)
    else:
        assert torch.isnan(est.mc_se).all() and est.summary().log_px_mc_se is None


def test_poor_guide_rises_towards_the_truth_from_below(lg):
    """Over-dispersed, off-centre proposal: Jensen's gap shrinks as K grows."""
    x = lg.data(400)
    truth = lg.log_px(x).mean().item()
    guide = lg.shifted_guide(offset=0.8, widen=2.0)
    previous, previous_se = None, 0.0
    for k in (1, 10, 100):
        s = log_marginal(lg.model, guide, x, k, seed=k).summary()
        # K = 1 cannot measure its own Monte Carlo error; the spread over data points bounds it
        se = s.log_px_mc_se or s.log_px_se
        # below the truth on average (Jensen): never significantly above it
        assert s.log_px < truth + 3 * se, (k, s.log_px, truth)
        if previous is not None:  # and rising, by more than three standard errors
            rise = s.log_px - previous.log_px
            assert rise > 3 * math.hypot(se, previous_se), (k, rise)
        previous, previous_se = s, se
    # at large K it is within a few standard errors of the truth
    s = log_marginal(lg.model, guide, x, 20000, seed=5).summary()
    assert abs(s.log_px - truth) < 4 * s.log_px_mc_se, (s.log_px, truth, s)
    assert s.khat_above == 0 and s.reliable  # a wide proposal has light-tailed weights


def test_khat_flags_a_too_narrow_guide(lg):
    x = lg.data(50)
    narrow = lg.shifted_guide(offset=1.0, widen=0.4)
    est = log_marginal(lg.model, narrow, x, 2000, seed=0)
    s = est.summary()
    assert s.khat_above > 25 and not s.reliable
    # ... and it is right to: the estimate sits far below the truth
    assert lg.log_px(x).mean().item() - s.log_px > 0.1
    good = log_marginal(lg.model, lg.shifted_guide(0.0, 1.2), x, 2000, seed=0).summary()
    assert good.khat_above == 0 and good.khat_max < 0.5


def test_chunked_and_unchunked_agree(lg):
    vae = build_vae(ModelConfig(latent_dim=4, hidden=[32]), 64)
    x = torch.bernoulli(torch.full((8, 64), 0.3), generator=torch.Generator().manual_seed(0))
    # Precondition: on CPU, torch's normal generator yields the same stream in pieces whose
    # sizes are multiples of 16 (it transforms uniforms in blocks of 16), so both runs below
    # draw exactly the same z.
    torch.manual_seed(0)
    whole = torch.randn(64 * 8 * 4)
    torch.manual_seed(0)
    assert torch.equal(whole, torch.cat([torch.randn(16 * 8 * 4) for _ in range(4)]))

    one = log_marginal(vae.model, vae.guide, x, 64, particle_chunk=64, seed=3)
    four = log_marginal(vae.model, vae.guide, x, 64, particle_chunk=16, seed=3)
    for field in ("log_px", "elbo", "ess"):
        assert torch.allclose(getattr(one, field), getattr(four, field), rtol=1e-6, atol=1e-5)
    # an uneven last chunk is combined exactly as well (different draws, same estimator)
    uneven = log_marginal(vae.model, vae.guide, x, 64, particle_chunk=24, seed=3)
    assert uneven.log_px.shape == (8,)


def test_particles_are_vectorized_and_passes_bounded(lg, monkeypatch):
    calls = []
    original = marginal_module.log_importance_weights

    def spy(model, guide, xb, k, *args, **kwargs):
        calls.append((k, len(xb)))
        return original(model, guide, xb, k, *args, **kwargs)

    monkeypatch.setattr(marginal_module, "log_importance_weights", spy)
    x = lg.data(30)
    log_marginal(lg.model, lg.exact_guide, x, 500, batch_size=10, max_rows=2000)
    # 3 data batches x ceil(500 / 200) particle chunks, each one vectorized pass
    assert len(calls) == 3 * 3
    assert all(k * b <= 2000 for k, b in calls) and sum(k for k, _ in calls) == 3 * 500


def test_matches_renyi_alpha_zero_iwae_bound(lg):
    """Pyro's RenyiELBO(alpha=0) is the same per-datapoint IWAE bound."""
    x = lg.data(100)
    guide = lg.shifted_guide(offset=0.5, widen=1.5)
    ours = log_marginal(lg.model, guide, x, 50, seed=0).summary()
    renyi = RenyiELBO(alpha=0, num_particles=50, vectorize_particles=True, max_plate_nesting=1)
    values = []
    for seed in range(20):
        pyro.set_rng_seed(seed)
        values.append(-renyi.loss(lg.model, guide, x) / len(x))
    theirs = sum(values) / len(values)
    se = math.hypot(ours.log_px_mc_se, ours.log_px_mc_se / math.sqrt(len(values)))
    assert abs(ours.log_px - theirs) < 4 * se


def test_on_a_trained_vae_elbo_below_k10_below_k1000(digits):
    cfg = RunConfig()
    cfg.model.hidden, cfg.model.latent_dim = [64], 8
    cfg.train.epochs = 20
    pyro.set_rng_seed(0)
    vae = build_vae(cfg.model, 64)
    Trainer(vae, cfg.train, digits, progress=False).fit()
    x = eval_view(digits.test, digits.levels, "dynamic", "test")
    # E[log p_10] per image, averaged over 10 independent runs: the K = 10 -> 1000 gain is a
    # few hundredths of a nat here, below the noise of a single K = 10 run.
    k10 = torch.stack([log_marginal(vae.model, vae.guide, x, 10, seed=s).log_px for s in range(10)])
    k10 = k10.mean(0)
    k1000 = log_marginal(vae.model, vae.guide, x, 1000, seed=99)
    for low, high in ((k1000.elbo, k10), (k10, k1000.log_px)):
        diff = (high - low).double()
        se = diff.std().item() / math.sqrt(len(diff))
        assert diff.mean().item() > 3 * se, (diff.mean().item(), se)


def test_bits_per_dimension():
    est = marginal_module.MarginalEstimate(
        log_px=torch.tensor([-100.0, -120.0]),
        elbo=torch.tensor([-110.0, -130.0]),
        ess=torch.tensor([10.0, 20.0]),
        khat=torch.tensor([0.2, 0.9]),
        num_samples=100,
    )
    s = est.summary(data_dim=50)
    assert s.bits_per_dim == pytest.approx(110 / (50 * math.log(2)))
    assert s.khat_above == 1 and not s.reliable
    # dequantized data: the density on [0,1]^D becomes a probability of 256-level images
    s = est.summary(data_dim=50, log_levels=math.log(256))
    assert s.bits_per_dim == pytest.approx((110 + 50 * math.log(256)) / (50 * math.log(2)))


def test_pareto_khat_recovers_known_tail_indices():
    g = torch.Generator().manual_seed(0)
    u = torch.rand(5000, 20, generator=g, dtype=torch.float64)
    heavy = pareto_khat(-0.9 * torch.log(u))  # Pareto weights u^(-0.9): tail index 0.9
    light = pareto_khat(torch.randn(5000, 20, generator=g, dtype=torch.float64) * 0.3)
    assert abs(heavy.median().item() - 0.9) < 0.15
    assert light.median().item() < 0.3
    assert torch.isnan(pareto_khat(torch.zeros(10, 3))).all()  # too few samples to fit


def test_global_latent_variables_are_refused_with_a_clear_message():
    def model(x):
        w = pyro.sample("w", dist.Normal(0.0, 1.0))
        with pyro.plate("data", len(x)):
            pyro.sample("x", dist.Normal(w, 1.0), obs=x)

    def guide(x):
        pyro.sample("w", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="'w' lies outside the plate 'data'"):
        log_marginal(model, guide, torch.zeros(5), 10)


def test_bad_arguments(lg):
    with pytest.raises(ValueError, match="positive"):
        log_marginal(lg.model, lg.exact_guide, lg.data(3), 0)
    with pytest.raises(ValueError, match="no data points"):
        log_marginal(lg.model, lg.exact_guide, lg.data(3)[:0], 10)


def test_shards_aligned_to_batches_give_the_same_per_point_estimates(lg):
    """Each batch draws from a seed derived from its first point's index, so a shard of the
    data evaluated on its own (another process) reproduces the whole run's numbers."""
    x = lg.data(40)
    whole = log_marginal(lg.model, lg.shifted_guide(0.5, 1.5), x, 30, batch_size=10, seed=5)
    parts = [
        log_marginal(
            lg.model,
            lg.shifted_guide(0.5, 1.5),
            x[a : a + 20],
            30,
            batch_size=10,
            seed=5,
            index_offset=a,
        )
        for a in (0, 20)
    ]
    assert torch.equal(whole.log_px, torch.cat([p.log_px for p in parts]))
    assert torch.equal(whole.elbo, torch.cat([p.elbo for p in parts]))
    # and the batches do not repeat one another's draws
    assert not torch.equal(
        whole.elbo[:10] - lg.log_px(x[:10]), whole.elbo[10:20] - lg.log_px(x[10:20])
    )
