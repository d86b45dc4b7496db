"""The convolutional encoder and decoder (pyro_vae/model/conv.py): sizes inferred from any image
shape, the decoder's output laid out for every likelihood's param_dim, every built-in guide on
the convolutional body, training that lowers the loss, the JIT ELBO equal to the eager one, and
the refusal on data that are not images."""

from __future__ import annotations

import math

import pyro
import pytest
import torch
from helpers import eager_and_traced_elbo

from pyro_vae import ConvDecoder, ConvEncoder, ModelConfig, RunConfig, Trainer, build_vae
from pyro_vae.app.vae_build import data_image_shape, resolve
from pyro_vae.config.datasets import image_shape
from pyro_vae.errors import ConfigError
from pyro_vae.infer.memory import output_width
from pyro_vae.model.conv import NeedsImages, encoder_body, stage_sizes
from pyro_vae.model.guides import GUIDES
from pyro_vae.model.likelihoods import LIKELIHOODS
from pyro_vae.model.parts import observes, param_dim

SHAPES = [(8, 8), (28, 28), (1, 28, 28), (3, 32, 32), (3, 7, 5), (2, 13, 9), (1, 1, 1)]
CONV = {"guide_kwargs": {"encoder": "conv"}, "decoder": "conv"}


def test_stage_sizes_halve_rounding_up_and_stop_at_small_sides():
    assert stage_sizes(28, 28, 2) == [(28, 28, 0), (14, 14, 2), (7, 7, 2)]
    assert stage_sizes(8, 8, 2) == [(8, 8, 0), (4, 4, 2), (4, 4, 1)]
    assert stage_sizes(13, 9, 3) == [(13, 9, 0), (7, 5, 2), (4, 3, 2), (4, 3, 1)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("k", [1, 2])
def test_decoder_output_is_param_dim_blocks_of_the_image(shape, k):
    d = math.prod(shape)
    decoder = ConvDecoder(4, k * d, d, shape, hidden=[16], channels=[4, 8])
    z = torch.randn(3, 5, 4)  # particles x batch x latent
    assert decoder(z).shape == (3, 5, k * d)
    assert decoder(z[0, 0]).shape == (k * d,)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("guide", sorted(GUIDES))
def test_every_builtin_guide_takes_the_conv_encoder(shape, guide):
    d = math.prod(shape)
    q = GUIDES[guide](d, 3, [16], encoder="conv", image_shape=shape, channels=[4, 8])
    assert isinstance(q.net, ConvEncoder)
    x = torch.rand(2, 6, d)
    posterior = q(x)
    assert posterior.batch_shape == (2, 6) and posterior.event_shape == (3,)
    z = posterior.rsample()
    assert torch.isfinite(posterior.log_prob(z)).all()
    # what refine.py reads: guide(x) is family(local_parameters(x))
    params = q.local_parameters(x)
    assert params.shape[:-1] == (2, 6)
    torch.testing.assert_close(q.family(params).log_prob(z), posterior.log_prob(z))


def test_full_guide_on_conv_starts_diagonal():
    q = GUIDES["full"](64, 3, [16], encoder="conv", image_shape=(8, 8))
    off = q.local_parameters(torch.rand(5, 64))[..., 6:]
    assert off.shape == (5, 3) and (off == 0).all()


def test_encoder_body_mlp_is_unchanged_and_refuses_channels():
    assert type(encoder_body("mlp", 64, [16], 6, "relu", None, None)).__name__ == "MLP"
    with pytest.raises(ValueError, match="channels"):
        encoder_body("mlp", 64, [16], 6, "relu", (8, 8), [4])
    with pytest.raises(ValueError, match="unknown encoder"):
        encoder_body("cnn", 64, [16], 6, "relu", (8, 8), None)


@pytest.mark.parametrize("bad", [[], [0], [4] * 9, "16", [2.5], [True]])
def test_channels_are_bounded(bad):
    with pytest.raises(ValueError, match="channels"):
        ConvDecoder(2, 64, 64, (8, 8), channels=bad)


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_each_likelihood_gets_its_param_dim_per_pixel(name):
    cfg = ModelConfig(likelihood=name, latent_dim=3, hidden=[16], **CONV)
    shape = (3, 7, 5)
    d = math.prod(shape)
    pixels = "counts" if observes(LIKELIHOODS[name]) == "counts" else None
    vae = build_vae(cfg, d, pixels, image_shape=shape)
    k = param_dim(vae.likelihood)
    h = vae.decoder(torch.randn(4, 3))
    assert h.shape == (4, k * d)
    assert vae.likelihood(h).event_shape == (d,)


def test_image_shape_from_the_data_settings():
    assert image_shape("digits", [], None) == (1, 8, 8)
    assert image_shape("fashion-mnist", [], None) == (1, 28, 28)
    assert image_shape("a.npy", [3, 16, 12], "ab" * 32) == (3, 16, 12)
    assert image_shape("a.npy", [20, 20], "ab" * 32) == (1, 20, 20)
    assert image_shape("t.csv", [5], "ab" * 32) == ()


def test_refused_without_an_image_shape():
    with pytest.raises(NeedsImages, match="--decoder conv needs images.*use --decoder mlp"):
        ConvDecoder(2, 5, 5, None)
    cfg = RunConfig()
    cfg.model.guide_kwargs = {"encoder": "conv"}
    cfg.data.dataset, cfg.data.data_shape, cfg.data.data_sha256 = "t.csv", [5], "ab" * 32
    cfg.data.data_kind, cfg.model.likelihood = "continuous", "gaussian"
    with pytest.raises(ConfigError, match=r"^--encoder conv needs images.*vectors of 5 values"):
        resolve(cfg, data_dim=5)


def test_memory_estimate_counts_the_feature_maps():
    encoder = ConvEncoder((1, 28, 28), [400], 40)
    assert output_width(encoder) == 16 * 14 * 14 + 32 * 7 * 7 + 400 + 40
    decoder = ConvDecoder(20, 784, 784, (28, 28), [400])
    assert output_width(decoder) == 400 + 32 * 7 * 7 + 16 * 14 * 14 + 784


def _digits_trainer(digits, seed: int = 0, **train):
    cfg = RunConfig()
    cfg.model.hidden, cfg.model.latent_dim = [32], 4
    for key, value in CONV.items():
        setattr(cfg.model, key, value)
    for key, value in train.items():
        setattr(cfg.train, key, value)
    cfg = resolve(cfg)
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    vae = build_vae(cfg.model, digits.data_dim, cfg.data.pixels, image_shape=data_image_shape(cfg))
    return Trainer(vae, cfg.train, digits, pixels=cfg.data.pixels, progress=False)


def test_training_on_digits_lowers_the_loss(digits):
    trainer = _digits_trainer(digits)
    x = trainer.data.epoch()[:64]
    losses = [trainer.step(x) for _ in range(40)]
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)


def test_jit_elbo_equals_the_eager_elbo(digits):
    """Same weights, same seed: the JIT-compiled ELBO's loss and update are the eager one's."""
    results = []
    for jit in (True, False):
        trainer = _digits_trainer(digits, jit=jit)
        assert trainer.cfg.jit is jit
        x = trainer.data.epoch()[:32]
        pyro.set_rng_seed(1)
        losses = [trainer.step(x) for _ in range(3)]
        weights = torch.cat([p.detach().flatten() for p in trainer.vae.parameters()])
        results.append((losses, weights))
    (jit_losses, jit_weights), (eager_losses, eager_weights) = results
    assert jit_losses == pytest.approx(eager_losses, rel=1e-5)
    torch.testing.assert_close(jit_weights, eager_weights, rtol=1e-4, atol=1e-5)


def test_the_compiled_elbos_traced_graph_equals_the_eager_elbo_on_conv_parts():
    """``--elbo compiled`` on the conv parts: the graph ``make_fx`` records (run as traced, not
    handed to Inductor, which takes seconds) gives the eager ``Trace_ELBO``'s loss and
    gradients with the same noise (Inductor itself was checked by hand: loss equal to 1e-6
    relative, gradients to 9e-4 absolute)."""
    cfg = ModelConfig(hidden=[32], latent_dim=4, decoder="conv", guide_kwargs={"encoder": "conv"})
    torch.manual_seed(0)
    vae = build_vae(cfg, 64, image_shape=(1, 8, 8))
    vae.register_parameters = False
    x = torch.bernoulli(torch.rand(40, 64, generator=torch.Generator().manual_seed(1)))
    eager, traced, compiled, graphs = eager_and_traced_elbo(vae, x)
    assert len(graphs) == 1 and compiled.failed is None
    torch.testing.assert_close(traced[0], eager[0], rtol=1e-5, atol=1e-3)
    for g_traced, g_eager in zip(traced[1], eager[1], strict=True):
        scale = g_eager.abs().max().item()
        torch.testing.assert_close(g_traced, g_eager, rtol=1e-4, atol=1e-4 * scale + 1e-6)
