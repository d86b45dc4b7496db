"""A leapfrog trajectory that diverges (z no longer finite) is rejected by the Metropolis test,
instead of a validated distribution's support check raising on the whole batch (which ended
AIS from the flow guide on Fashion-MNIST)."""

from __future__ import annotations

import math

import torch
import torch.distributions as td

from pyro_vae.infer.hmc import evaluate_state, hmc_transition


def _density(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi_0 = N(0, I) and log p = -z^4 summed: a validated distribution raises at NaN."""
    base = td.Independent(td.Normal(torch.zeros(z.shape[-1]), 1.0, validate_args=True), 1)
    return base.log_prob(z), -(z**4).sum(-1)


def test_a_non_finite_z_gets_nan_densities_and_the_others_their_own():
    z = torch.randn(2, 3, 4)
    z[1, 2, 0] = math.nan
    z[0, 1, 3] = math.inf
    state = evaluate_state(_density, z)
    bad = torch.tensor([[False, True, False], [False, False, True]])
    assert torch.isnan(state.base[bad]).all() and torch.isnan(state.joint[bad]).all()
    base, joint = _density(z[~bad])
    torch.testing.assert_close(state.base[~bad], base.double())
    torch.testing.assert_close(state.joint[~bad], joint.double())


def test_a_diverging_trajectory_is_rejected_and_its_neighbours_move():
    torch.manual_seed(0)
    start = evaluate_state(_density, 0.5 * torch.randn(4, 2, 3))
    step = torch.tensor([1e30, 0.1])  # the first point's leapfrog overflows
    momentum, log_u = torch.randn(4, 2, 3), torch.rand(4, 2).log()
    new, accept = hmc_transition(start, 0.5, step, 5, _density, momentum, log_u)
    assert torch.equal(accept[:, 0], torch.zeros(4, dtype=accept.dtype))
    assert torch.equal(new.z[:, 0], start.z[:, 0])
    assert torch.isfinite(new.z).all()
    assert (accept[:, 1] > 0).all() and not torch.equal(new.z[:, 1], start.z[:, 1])
