"""The held-out ELBO of a fixed data tensor, with common random numbers across epochs."""

from __future__ import annotations

from collections.abc import Callable

import pyro
import torch
from pyro.infer import Trace_ELBO

from ..rng import seeded_rng

EVAL_SEED = 20131220
"""Seed of the guide samples used for held-out ELBOs (fixed: common random numbers)."""


@torch.no_grad()
def heldout_elbo(
    model: Callable,
    guide: Callable,
    x: torch.Tensor,
    num_particles: int = 10,
    chunk_size: int = 1000,
    seed: int = EVAL_SEED,
) -> float:
    """ELBO per example (nats) of a fixed data tensor, averaged over ``num_particles`` guide
    samples per example; the model's data plate must cover the batch (no ``num_data``)."""
    elbo = Trace_ELBO(
        num_particles=num_particles, vectorize_particles=num_particles > 1, max_plate_nesting=1
    )
    total = 0.0
    with seeded_rng(seed), pyro.validation_enabled(False):
        for chunk in x.split(chunk_size):
            total += elbo.loss(model, guide, chunk)
    return -total / len(x)
