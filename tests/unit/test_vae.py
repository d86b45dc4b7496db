import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO
from pyro.poutine.util import site_is_subsample

from pyro_vae import VAE, ModelConfig, build_vae

B, D, K = 7, 64, 5


@pytest.fixture
def vae():
    return build_vae(ModelConfig(latent_dim=K, hidden=[32], prior="normal"), data_dim=D)


@pytest.fixture
def x():
    return torch.bernoulli(torch.full((B, D), 0.3))


def test_guide_trace_sites_and_shapes(vae, x):
    trace = poutine.trace(vae.guide).get_trace(x)
    samples = [
        n for n, s in trace.nodes.items() if s["type"] == "sample" and not site_is_subsample(s)
    ]
    assert samples == ["z"]
    z = trace.nodes["z"]
    assert z["value"].shape == (B, K)
    assert z["fn"].batch_shape == (B,) and z["fn"].event_shape == (K,)
    assert z["fn"].has_rsample and z["value"].requires_grad  # reparameterized
    params = [n for n, s in trace.nodes.items() if s["type"] == "param"]
    assert params and all(n.startswith("encoder$$$") for n in params)


def test_model_trace_sites_and_shapes(vae, x):
    guide_trace = poutine.trace(vae.guide).get_trace(x)
    trace = poutine.trace(poutine.replay(vae.model, trace=guide_trace)).get_trace(x)
    samples = [
        n for n, s in trace.nodes.items() if s["type"] == "sample" and not site_is_subsample(s)
    ]
    assert samples == ["z", "x"]
    assert torch.equal(trace.nodes["z"]["value"], guide_trace.nodes["z"]["value"])
    site = trace.nodes["x"]
    assert site["is_observed"] and site["value"] is x
    assert site["fn"].batch_shape == (B,) and site["fn"].event_shape == (D,)
    trace.compute_log_prob()
    assert trace.nodes["x"]["log_prob"].shape == (B,)  # one log-likelihood per example
    assert all(n.startswith("decoder$$$") for n, s in trace.nodes.items() if s["type"] == "param")


def test_data_plate_scales_a_minibatch_to_the_whole_data_set(vae, x):
    trace = poutine.trace(vae.model).get_trace(x, num_data=700)
    assert trace.nodes["x"]["scale"] == pytest.approx(700 / B)
    assert trace.nodes["z"]["scale"] == pytest.approx(700 / B)
    unscaled = poutine.trace(vae.model).get_trace(x)
    assert unscaled.nodes["x"]["scale"] == 1.0


def test_minibatch_loss_estimates_the_full_data_loss_at_any_batch_size(vae, x):
    """With num_data=N, the loss is N/B times the sum over the batch: same RNG, same draws."""
    elbo = Trace_ELBO()
    pyro.set_rng_seed(3)
    scaled = elbo.loss(vae.model, vae.guide, x, num_data=700)
    pyro.set_rng_seed(3)
    summed = elbo.loss(vae.model, vae.guide, x)
    assert scaled == pytest.approx(700 / B * summed, rel=1e-5)


def test_gradients_reach_encoder_and_decoder(vae, x):
    loss = Trace_ELBO().differentiable_loss(vae.model, vae.guide, x)
    loss.backward()
    for module in (vae.encoder, vae.decoder):
        for name, p in module.named_parameters():
            assert p.grad is not None, name
            assert p.grad.abs().sum() > 0, name


def test_works_with_plain_pyro_svi_and_pyro_optim(vae, x):
    """The VAE is an ordinary Pyro program: Pyro's own SVI + pyro.optim trains it."""
    svi = SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 1e-2}), loss=Trace_ELBO())
    losses = [svi.step(x) for _ in range(60)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-10:]) < sum(losses[:10])
    names = set(pyro.get_param_store().keys())
    assert any(n.startswith("encoder$$$") for n in names)
    assert any(n.startswith("decoder$$$") for n in names)


def test_vectorized_particles_broadcast_through_the_program(vae, x):
    elbo = Trace_ELBO(num_particles=11, vectorize_particles=True, max_plate_nesting=1)
    loss = elbo.differentiable_loss(vae.model, vae.guide, x)
    assert loss.shape == () and torch.isfinite(loss)
    with pyro.plate("particles", 11, dim=-2):
        trace = poutine.trace(vae.guide).get_trace(x)
    assert trace.nodes["z"]["value"].shape == (11, B, K)


def test_reconstruct_and_sample_are_probabilities(vae, x):
    r, s = vae.reconstruct(x), vae.sample(9)
    assert r.shape == (B, D) and s.shape == (9, D)
    for t in (r, s):
        assert t.min() >= 0 and t.max() <= 1
    assert vae.latent_dim == K


def test_a_hand_written_prior_plugs_in(x):
    """A prior can be any callable returning a distribution over z."""
    base = build_vae(ModelConfig(latent_dim=K, hidden=[16]), D)
    laplace = VAE(
        lambda: dist.Laplace(torch.zeros(K), torch.ones(K)).to_event(1),
        base.encoder,
        base.decoder,
        base.likelihood,
    )
    trace = poutine.trace(laplace.model).get_trace(x)
    assert isinstance(trace.nodes["z"]["fn"].base_dist, dist.Laplace)
    assert torch.isfinite(torch.tensor(Trace_ELBO().loss(laplace.model, laplace.guide, x)))


def test_bernoulli_refuses_grey_levels_unless_asked(x):
    strict = build_vae(ModelConfig(latent_dim=K, hidden=[16]), D, pixels="dynamic")
    grey = torch.rand(B, D)
    with pyro.validation_enabled(True), pytest.raises(ValueError, match="support"):
        Trace_ELBO().loss(strict.model, strict.guide, grey)
    lenient = build_vae(ModelConfig(latent_dim=K, hidden=[16]), D, pixels="grey")
    with pyro.validation_enabled(True):
        assert torch.isfinite(torch.tensor(Trace_ELBO().loss(lenient.model, lenient.guide, grey)))
