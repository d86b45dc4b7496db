"""``--activation gated``: each hidden layer of the MLP parts is Linear(width, 2 h) then GLU,
h = a * sigmoid(b) (Tomczak & Welling's gated dense layers); the convolutional parts, whose
activation is elementwise, refuse it in one sentence."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pyro_vae import ConfigError, ModelConfig, RunConfig, build_vae, resolve
from pyro_vae.model.nets import MLP


def test_a_gated_layer_is_half_of_a_linear_layer_times_the_sigmoid_of_the_other_half():
    torch.manual_seed(0)
    net = MLP(6, [5, 4], 3, "gated")
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(6, 10), (5, 8), (4, 3)]
    x = torch.randn(2, 7, 6)
    h = x
    for m in linears[:-1]:
        a, b = m(h).chunk(2, -1)
        h = a * torch.sigmoid(b)
    torch.testing.assert_close(net(x), linears[-1](h))
    assert net(x).shape == (2, 7, 3)


def test_the_gated_vae_trains_and_its_encoder_and_decoder_are_gated(digits):
    vae = build_vae(ModelConfig(activation="gated", hidden=[16]), 64)
    assert sum(isinstance(m, nn.GLU) for m in vae.modules()) == 2  # encoder's and decoder's
    x = digits.train.images[:32].reshape(32, -1).div(16).bernoulli()
    from pyro.infer import Trace_ELBO

    loss = Trace_ELBO().differentiable_loss(vae.model, vae.guide, x)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in vae.parameters())


@pytest.mark.parametrize("part", ["encoder", "decoder"])
def test_the_conv_parts_refuse_a_gated_activation_naming_the_ones_they_take(part):
    cfg = RunConfig()
    cfg.model.activation = "gated"
    if part == "decoder":
        cfg.model.decoder = "conv"
    else:
        cfg.model.guide_kwargs = {"encoder": "conv"}
    with pytest.raises(ConfigError) as caught:
        resolve(cfg)
    message = str(caught.value)
    assert "\n" not in message
    assert "elementwise activation (softplus, relu, tanh, elu), not 'gated'" in message
