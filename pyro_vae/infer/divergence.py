"""When a training run counts as diverged: bounds far from any sane run, so that only a
diverging objective crosses them."""

from __future__ import annotations

import math
from collections.abc import Sequence

DIVERGENCE_NATS_PER_DIM = 10.0
"""How far below a sane bound (in nats per data dimension) an epoch's ELBO must fall for the
run to count as diverged (see :func:`divergence_reason`)."""


def divergence_reason(
    val_elbo: float,
    train_objective: float,
    earlier_val_elbos: Sequence[float],
    data_dim: int,
    latent_dim: int,
    observes: str,
) -> str | None:
    """Why an epoch counts as diverged, or None. With D data dimensions, K latent dimensions
    and s = ``DIVERGENCE_NATS_PER_DIM`` * (D + K) nats per example:

    * the validation ELBO is not finite;
    * for binary or unit data (``observes``), the validation ELBO or the training objective is
      below -D log 2 - s: far worse than the trivial model that gives each pixel probability
      1/2 (an untrained Bernoulli decoder starts near it, less the KL term of an untrained
      guide, well under a nat per latent dimension; any model that learns beats it);
    * the validation ELBO fell more than s below its best of ``earlier_val_elbos``.

    The bounds are far from any sane run (digits, K = 20: -884 against -23 after training), so
    only a diverging objective, e.g. ``--lr 1e3`` (-9e6 after one epoch), crosses them."""
    slack = DIVERGENCE_NATS_PER_DIM * (data_dim + latent_dim)
    per = f"{DIVERGENCE_NATS_PER_DIM:g} nats per pixel and per latent dimension"
    if not math.isfinite(val_elbo):
        return f"the validation ELBO is {val_elbo}"
    if observes in ("binary", "unit"):
        trivial = -data_dim * math.log(2)
        floor = trivial - slack
        for name, value in (("validation ELBO", val_elbo), ("training objective", train_objective)):
            if value < floor:
                return (
                    f"the {name} is {value:.6g} nats per example, below {floor:.1f}: the "
                    f"{trivial:.1f} of a model that gives every pixel probability 1/2, less {per}"
                )
    best = max(earlier_val_elbos, default=None)
    if best is not None and val_elbo < best - slack:
        return (
            f"the validation ELBO is {val_elbo:.6g} nats per example, more than {per} below "
            f"its best, {best:.6g}"
        )
    return None
