"""Training objectives: IWAE, analytic KL, KL weighting, and the JIT guard."""

from __future__ import annotations

import math
import statistics

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import SVI, RenyiELBO, Trace_ELBO, TraceMeanField_ELBO
from torch.distributions import kl_divergence

from pyro_vae import ConfigError, ModelConfig, RunConfig, Trainer, build_vae, resolve
from pyro_vae.infer.objectives import IWAE, IWAE_DReG, LatentScaleMessenger, kl_weight


@pytest.fixture
def vae():
    pyro.set_rng_seed(0)
    # N(0, I): the prior with an analytic KL to the diagonal guide (for meanfield)
    return build_vae(ModelConfig(latent_dim=4, hidden=[32], prior="normal"), 64)


@pytest.fixture
def x():
    return torch.bernoulli(torch.full((16, 64), 0.3), generator=torch.Generator().manual_seed(1))


def mean_and_se(values):
    return statistics.mean(values), statistics.stdev(values) / math.sqrt(len(values))


def seeded_losses(loss_fn, n=200):
    out = []
    for seed in range(n):
        pyro.set_rng_seed(seed)
        out.append(loss_fn())
    return out


def test_iwae_is_renyi_alpha_zero_without_subsampling(vae, x):
    ours = seeded_losses(lambda: IWAE(5).loss(vae.model, vae.guide, x))
    renyi = RenyiELBO(alpha=0, num_particles=5, vectorize_particles=True, max_plate_nesting=1)
    theirs = seeded_losses(lambda: renyi.loss(vae.model, vae.guide, x))
    (a, se_a), (b, se_b) = mean_and_se(ours), mean_and_se(theirs)
    assert abs(a - b) < 4 * math.hypot(se_a, se_b)


def test_iwae_scales_a_minibatch_after_the_log_sum_exp(vae, x):
    """(N / B) x the batch's bound, with the same draws. Pyro's RenyiELBO instead raises each
    weight to the power s = N / B inside the log-sum-exp; by the power-mean inequality
    log mean(w^s) >= s log mean(w), so its objective overstates the bound."""
    n = 1600
    pyro.set_rng_seed(3)
    scaled = IWAE(5).loss(vae.model, vae.guide, x, num_data=n)
    pyro.set_rng_seed(3)
    plain = IWAE(5).loss(vae.model, vae.guide, x)
    assert scaled == pytest.approx(n / len(x) * plain, rel=1e-5)

    renyi = RenyiELBO(alpha=0, num_particles=5, vectorize_particles=True, max_plate_nesting=1)
    r_scaled = statistics.mean(
        seeded_losses(lambda: renyi.loss(vae.model, vae.guide, x, num_data=n), 50)
    )
    r_plain = statistics.mean(seeded_losses(lambda: renyi.loss(vae.model, vae.guide, x), 50))
    assert r_scaled < n / len(x) * r_plain - 100.0  # a smaller loss: it overstates the bound


def test_iwae_bound_lies_between_elbo_and_rises_with_k(vae, x):
    elbo = seeded_losses(lambda: Trace_ELBO().loss(vae.model, vae.guide, x))
    k5 = seeded_losses(lambda: IWAE(5).loss(vae.model, vae.guide, x))
    k50 = seeded_losses(lambda: IWAE(50).loss(vae.model, vae.guide, x))
    (e, se_e), (a, se_a), (b, se_b) = mean_and_se(elbo), mean_and_se(k5), mean_and_se(k50)
    # losses are negative bounds: ELBO loss > IWAE-5 loss > IWAE-50 loss
    assert e - a > 4 * math.hypot(se_e, se_a)
    assert a - b > 4 * math.hypot(se_a, se_b)


@pytest.mark.parametrize("objective", [IWAE, IWAE_DReG])
def test_iwae_trains_through_pyro_svi_and_reaches_both_networks(vae, x, objective):
    pyro.clear_param_store()
    loss = objective(5).differentiable_loss(vae.model, vae.guide, x, num_data=100)
    loss.backward()
    for module in (vae.encoder, vae.decoder):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    svi = SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 1e-2}), loss=objective(5))
    losses = [svi.step(x) for _ in range(40)]
    assert sum(losses[-5:]) < sum(losses[:5])
    # the parameters Pyro optimizes are the VAE's own (DReG's re-scoring registers nothing)
    store = pyro.get_param_store()
    assert all(store[n] is p for n, p in store.named_parameters())
    assert {id(p) for _, p in store.named_parameters()} == {id(p) for p in vae.parameters()}


def _gradients(vae, x, objective, seed):
    vae.zero_grad()
    pyro.set_rng_seed(seed)
    loss = objective.differentiable_loss(vae.model, vae.guide, x)
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in vae.named_parameters()}


def test_dreg_has_the_iwae_value_and_the_same_model_gradient(vae, x):
    """Same draws: the same bound, and the decoder's gradient sum_k w~_k grad log p(x, z_k) is
    the same; only the encoder's differs."""
    vae.register_parameters = False
    plain_loss, plain = _gradients(vae, x, IWAE(5), 4)
    dreg_loss, dreg = _gradients(vae, x, IWAE_DReG(5), 4)
    assert dreg_loss == pytest.approx(plain_loss, rel=1e-6)
    for name in plain:
        same = torch.allclose(plain[name], dreg[name], rtol=1e-4, atol=1e-5)
        assert same == name.startswith("decoder"), name


@pytest.mark.parametrize("prior", ["normal", "vamp", "two-layer-vamp"])
def test_dreg_guide_gradient_is_unbiased_with_lower_variance(x, prior):
    """E[DReG gradient] = E[IWAE gradient] (Tucker et al. 2018), checked on the gradient's
    projection onto a fixed random direction per parameter tensor: the paired difference over
    the same draws lies within 4 standard errors of 0. And the encoder's whole gradient (its
    projection onto one direction over all its parameters) has a smaller variance. Both
    VampPriors put the encoder in p(z) too, where its direct gradient stays the IWAE one (with
    them a small tensor, such as the output bias, can be noisier under DReG); the two-layer one
    adds the guide's second site z2 ~ q(z2 | z)."""
    pyro.set_rng_seed(0)
    kwargs = {
        "normal": {},
        "vamp": {"pseudo_inputs": 5},
        "two-layer-vamp": {"pseudo_inputs": 5, "top_hidden": [8]},
    }[prior]
    vae = build_vae(ModelConfig(latent_dim=3, hidden=[16], prior=prior, prior_kwargs=kwargs), 64)
    vae.register_parameters = False
    g = torch.Generator().manual_seed(0)
    names = [n for n, _ in vae.named_parameters() if not n.startswith("decoder")]
    directions = {n: torch.randn(p.shape, generator=g) for n, p in vae.named_parameters()}
    n_draws = 200
    diffs = {n: [] for n in names}
    plain_encoder, dreg_encoder = [], []
    for seed in range(n_draws):
        _, plain = _gradients(vae, x[:8], IWAE(10), seed)
        _, dreg = _gradients(vae, x[:8], IWAE_DReG(10), seed)
        a = {n: (plain[n] * directions[n]).sum().item() for n in names}
        b = {n: (dreg[n] * directions[n]).sum().item() for n in names}
        for n in names:
            diffs[n].append(a[n] - b[n])
        plain_encoder.append(sum(a[n] for n in names if n.startswith("encoder")))
        dreg_encoder.append(sum(b[n] for n in names if n.startswith("encoder")))
    for n in names:
        mean, se = mean_and_se(diffs[n])
        assert abs(mean) < 4 * se or se == 0, (n, mean, se)
    assert statistics.variance(dreg_encoder) < statistics.variance(plain_encoder)


def test_dreg_needs_the_guide_of_a_module(x):
    def model(x):
        with pyro.plate("data", len(x)):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(z, 1.0).expand([len(x), 64]).to_event(1), obs=x)

    def guide(x):
        with pyro.plate("data", len(x)):
            pyro.sample("z", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="method of an nn.Module"):
        IWAE_DReG(5).differentiable_loss(model, guide, x)


def test_analytic_kl_matches_monte_carlo_kl_within_standard_errors():
    g = torch.Generator().manual_seed(0)
    q = dist.Normal(torch.randn(4, generator=g), torch.rand(4, generator=g) + 0.3).to_event(1)
    p = dist.Normal(torch.zeros(4), torch.ones(4)).to_event(1)
    analytic = kl_divergence(q, p).item()
    z = q.sample((20000,))
    mc = q.log_prob(z) - p.log_prob(z)
    se = mc.std().item() / math.sqrt(len(mc))
    assert abs(mc.mean().item() - analytic) < 4 * se


def test_meanfield_elbo_same_mean_lower_variance(vae, x):
    trace = seeded_losses(lambda: Trace_ELBO().loss(vae.model, vae.guide, x), 300)
    meanfield = seeded_losses(lambda: TraceMeanField_ELBO().loss(vae.model, vae.guide, x), 300)
    (a, se_a), (b, se_b) = mean_and_se(trace), mean_and_se(meanfield)
    assert abs(a - b) < 4 * math.hypot(se_a, se_b)
    assert statistics.variance(meanfield) < statistics.variance(trace)


def test_latent_scale_weights_the_kl_term_only(vae, x):
    model = LatentScaleMessenger(0.25)(vae.model)
    guide = LatentScaleMessenger(0.25)(vae.guide)
    guide_trace = poutine.trace(guide).get_trace(x, num_data=64)
    model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(x, num_data=64)
    assert guide_trace.nodes["z"]["scale"] == pytest.approx(0.25 * 64 / 16)
    assert model_trace.nodes["z"]["scale"] == pytest.approx(0.25 * 64 / 16)
    assert model_trace.nodes["x"]["scale"] == pytest.approx(64 / 16)  # likelihood untouched

    def loss(beta):  # -(E log p(x|z) - beta * KL): affine in beta for the same draws
        pyro.set_rng_seed(7)
        m, g = LatentScaleMessenger(beta)(vae.model), LatentScaleMessenger(beta)(vae.guide)
        return Trace_ELBO().loss(m, g, x)

    assert loss(3.0) - 2 * loss(2.0) + loss(1.0) == pytest.approx(0.0, abs=1e-3)
    assert loss(2.0) > loss(1.0)  # the KL is positive here


def test_kl_weight_schedule():
    assert [kl_weight(e, 0.5, 4) for e in range(1, 7)] == [0.125, 0.25, 0.375, 0.5, 0.5, 0.5]
    assert kl_weight(1, 2.0, 0) == 2.0
    with pytest.raises(ValueError, match="positive"):
        LatentScaleMessenger(0.0)


def test_trainer_records_the_kl_weight_and_warms_up(digits):
    cfg = RunConfig()
    cfg.model.hidden, cfg.model.latent_dim = [32], 4
    cfg.train.epochs, cfg.train.kl_warmup, cfg.train.beta = 4, 2, 2.0
    pyro.set_rng_seed(0)
    history = Trainer(build_vae(cfg.model, 64), cfg.train, digits, progress=False).fit()
    assert [r.kl_weight for r in history] == [1.0, 2.0, 2.0, 2.0]


def test_jit_trainer_uses_each_kl_weight_program(digits):
    """Pyro's JitTrace_ELBO keeps the model of its first call; the trainer keeps one per weight."""
    cfg = RunConfig()
    cfg.model.hidden, cfg.model.latent_dim = [32], 4
    cfg.train.jit = True
    pyro.set_rng_seed(0)
    trainer = Trainer(build_vae(cfg.model, 64), cfg.train, digits, progress=False)
    x = torch.bernoulli(torch.full((32, 64), 0.3), generator=torch.Generator().manual_seed(0))
    m_low, g_low, jit_low = trainer.objective(0.01)
    m_one, g_one, jit_one = trainer.objective(1.0)
    jit_low.differentiable_loss(m_low, g_low, x)  # compile the low-weight program first
    with torch.no_grad():
        jit_vals = seeded_losses(lambda: jit_one.differentiable_loss(m_one, g_one, x).item(), 60)
    eager_one = seeded_losses(lambda: Trace_ELBO().loss(m_one, g_one, x), 60)
    eager_low = seeded_losses(lambda: Trace_ELBO().loss(m_low, g_low, x), 60)
    (a, se_a), (b, se_b), (c, se_c) = map(mean_and_se, (jit_vals, eager_one, eager_low))
    assert abs(a - b) < 4 * math.hypot(se_a, se_b)
    assert abs(a - c) > 4 * math.hypot(se_a, se_c)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"elbo": "iwae", "particles": 1}, "needs --particles K >= 2"),
        ({"elbo": "iwae-dreg", "particles": 1}, "needs --particles K >= 2"),
        ({"elbo": "iwae-dreg", "particles": 5, "jit": True}, "--jit is not available"),
        ({"elbo": "iwae", "particles": 5, "jit": True}, "--jit is not available"),
        ({"elbo": "iwae", "particles": 5, "beta": 2.0}, "--beta and --kl-warmup apply"),
        ({"elbo": "meanfield", "jit": True}, "--jit is not available"),
        ({"beta": 0.0}, "beta must be a positive number"),
        ({"kl_warmup": -1}, "kl-warmup must be"),
    ],
)
def test_invalid_objective_options(changes, message):
    cfg = RunConfig()
    for key, value in changes.items():
        setattr(cfg.train, key, value)
    with pytest.raises(ConfigError, match=message):
        resolve(cfg)


@pytest.mark.parametrize(
    "model_changes,pixels,message",
    [
        (
            {"prior": "vamp", "guide": "flow", "guide_kwargs": {"flow_type": "planar"}},
            None,
            "not invertible",
        ),
        ({"likelihood": "gaussian"}, "dynamic", "needs --pixels dequantized"),
        ({"likelihood": "bernoulli"}, "dequantized", "needs binary pixels"),
        (
            {"likelihood": "gaussian", "likelihood_kwargs": {"sigma": -1.0}},
            None,
            "sigma must be a finite number >= 1.18e-38",
        ),
        ({"prior": "mog", "prior_kwargs": {"components": 0}}, None, "components must be"),
        ({"prior": "normal", "prior_kwargs": {"components": 3}}, None, "takes no option"),
    ],
)
def test_invalid_part_combinations(model_changes, pixels, message):
    cfg = RunConfig()
    for key, value in model_changes.items():
        setattr(cfg.model, key, value)
    cfg.data.pixels = pixels
    with pytest.raises(ConfigError, match=message):
        resolve(cfg)


def test_dreg_refuses_a_guide_without_a_density_at_its_draws():
    """DReG re-scores log q at the guide's draws as new tensors: a planar flow's inverse does
    not exist (an IAF's does, and trains)."""
    cfg = RunConfig()
    cfg.model.guide, cfg.model.guide_kwargs = "flow", {"flow_type": "planar"}
    cfg.train.elbo, cfg.train.particles = "iwae-dreg", 5
    with pytest.raises(ConfigError, match="iwae-dreg re-scores"):
        resolve(cfg)
    cfg.train.elbo = "iwae"
    resolve(cfg)


def test_default_pixels_follow_the_likelihood():
    """Densities see dequantized pixels; the Bernoulli likelihood grey levels (its expected
    log-likelihood over binarizations); a Bernoulli built strict keeps binary data."""
    from pyro_vae.model.likelihoods import BernoulliLikelihood
    from pyro_vae.model.parts import default_pixels

    cfg = RunConfig()
    cfg.model.likelihood = "gaussian-learned"
    assert resolve(cfg).data.pixels == "dequantized"
    assert resolve(RunConfig()).data.pixels == "grey"
    assert default_pixels(BernoulliLikelihood()) == "dynamic"
    assert default_pixels(BernoulliLikelihood(pixels="grey")) == "grey"
