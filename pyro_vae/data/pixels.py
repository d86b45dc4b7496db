"""From integer grey levels to the tensors a likelihood observes.

A *pixel scheme* says how the images of a split become model inputs (flattened to ``[N, D]``):

* ``dynamic``: binary, ``x ~ Bernoulli(level / (levels - 1))`` drawn afresh at every epoch
  (the usual protocol for binarized MNIST in the log-likelihood literature);
* ``static``: binary, one seeded draw per split, reused for ever;
* ``grey``: grey levels scaled to ``[0, 1]`` (what most tutorials feed a Bernoulli decoder);
* ``dequantized``: continuous, ``(level + u) / levels`` with ``u ~ U(0, 1)`` drawn afresh at
  every epoch, so a density on ``[0, 1]^D`` is comparable to a discrete model's probability
  mass (for a density ``p`` on the unit cube, ``log P(x) >= E_u[log p((x + u) / L)] - D log L``
  with ``L`` the number of levels).

Evaluation never uses fresh noise: validation and test sets are binarized (or dequantized) once,
with a fixed seed per split (``EVAL_SEEDS``), so every run and every model is scored on the
same numbers.
"""

from __future__ import annotations

import math

import torch

from ..config.pixels import (  # noqa: F401  (re-exported)
    BINARY_SCHEMES,
    PIXEL_SCHEMES,
    SCHEMES,
    PixelScheme,
    pixel_scheme,
)
from .datasets import Split

EVAL_SEEDS = {"train": 2, "val": 1, "test": 0}
"""Seeds of the one-off binarization / dequantization draw of each split."""


def unit_interval(split: Split, levels: int) -> torch.Tensor:
    """Grey levels scaled to ``[0, 1]``, flattened: ``[N, H*W]`` float32."""
    return split.images.reshape(len(split), -1).float() / (levels - 1)


def binarize(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One Bernoulli draw per pixel: ``x_ij ~ Bernoulli(probs_ij)``, drawn where ``generator``
    lives and returned on ``probs``' device."""
    if generator is not None and generator.device != probs.device:
        return torch.bernoulli(probs.to(generator.device), generator=generator).to(probs.device)
    return torch.bernoulli(probs, generator=generator)


_U_MAX = 1.0 - 2.0**-14
"""Largest noise value: (level + u) / levels must stay below (level + 1) / levels after the cast
to float32, whose spacing below 1 is 2^-24, so (1 - u) / levels >= 2^-23 is needed for up to
256 levels; the 6e-5 of probability above the cap is moved onto it."""


def dequantize(split: Split, levels: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform dequantization ``(level + u) / levels``, ``u ~ U(0, 1)``: values in ``(0, 1)``,
    each inside its own level's cell (``u`` is capped at ``1 - 2^-14`` so that rounding to float32
    cannot reach the next level). The noise is drawn where ``generator`` lives, the result put on
    the images' device."""
    flat = split.images.reshape(len(split), -1).double()
    device = generator.device if generator is not None else flat.device
    noise = torch.rand(flat.shape, generator=generator, device=device, dtype=torch.float64)
    noise = noise.to(flat.device).clamp(max=_U_MAX)
    return ((flat + noise) / levels).float()


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _draw(
    split: Split, levels: int, values: str, generator: torch.Generator | None
) -> torch.Tensor:
    """The images as ``values`` (``binary``, ``unit`` or ``continuous``), noise from
    ``generator`` (the global torch RNG when None)."""
    if values == "binary":
        return binarize(unit_interval(split, levels), generator)
    if values == "unit":
        return unit_interval(split, levels)
    return dequantize(split, levels, generator)


def as_is(split: Split) -> torch.Tensor:
    """Counts (int64) or continuous values (float32) of a data file, observed as they are:
    ``[N, D]`` float32 (every pixel scheme of integer levels leaves them alone)."""
    return split.images.reshape(len(split), -1).float()


def _levels(split: Split) -> bool:
    """Whether ``split`` holds integer levels (uint8), which pixel schemes turn into
    observations; counts and continuous values are observed as they are (:func:`as_is`)."""
    return split.images.dtype == torch.uint8


def eval_view(
    split: Split, levels: int | None, scheme: str | PixelScheme, split_name: str
) -> torch.Tensor:
    """The fixed tensor a model trained with ``scheme`` is evaluated on.

    A model of binary images (binary schemes and ``grey``) is evaluated on a static
    binarization (so a model trained on grey levels is scored on the same binary test set as
    the others); a density (``dequantized``) on one fixed dequantization.
    """
    if not _levels(split):
        return as_is(split)
    values = "continuous" if pixel_scheme(scheme).density else "binary"
    return _draw(split, levels, values, _seeded(EVAL_SEEDS[split_name]))


def train_view(
    split: Split,
    levels: int | None,
    scheme: str | PixelScheme,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The training tensor for one epoch: fresh noise from ``generator`` where the scheme
    re-samples (the global torch RNG when ``generator`` is None), else the training split's one
    seeded draw."""
    s = pixel_scheme(scheme)
    if not _levels(split):
        return as_is(split)
    if not s.fresh_noise:
        generator = _seeded(EVAL_SEEDS["train"])
    return _draw(split, levels, s.values, generator)


def log_levels(scheme: str | PixelScheme, levels: int | None) -> float:
    """The per-dimension offset between a density of dequantized pixels and a probability of
    grey levels: ``log(levels)`` for a density (``dequantized``), 0 for discrete schemes and for
    values observed as they are (``levels`` None: counts, continuous data)."""
    if levels is None:
        return 0.0
    return math.log(levels) if pixel_scheme(scheme).density else 0.0
