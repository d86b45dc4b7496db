"""Random-number state: seeding a block, and saving / restoring every generator a run uses."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch


def cuda_devices() -> list[int]:
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


@contextmanager
def seeded_rng(seed: int | None) -> Iterator[None]:
    """Run a block with the global RNGs seeded by ``seed``, restoring them afterwards
    (``seed=None``: no seeding, the block draws from the global stream)."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=cuda_devices()):
        torch.manual_seed(seed)
        yield


@contextmanager
def isolated_rng() -> Iterator[None]:
    """Run a block whose draws leave torch's generators as they were (for work, such as
    guessing a program's plate nesting, that must not shift a seeded estimate's draws)."""
    with torch.random.fork_rng(devices=cuda_devices()):
        yield


_MASK64 = (1 << 64) - 1
_MASK32 = (1 << 32) - 1


def numpy_seed(seed: int) -> int | list[int]:
    """What seeds numpy's global generator for a run's ``seed`` (0 to 2**63 - 1): the seed
    itself below 2**32 (as ``pyro.set_rng_seed`` has always seeded it), else its two 32-bit
    words, low first (``np.random.seed`` takes 32-bit integers or an array of them; distinct
    seeds give distinct arrays)."""
    if seed <= _MASK32:
        return seed
    words = []
    while seed:
        words.append(seed & _MASK32)
        seed >>= 32
    return words


def random_state(seed: int) -> int | np.random.RandomState:
    """What scikit-learn's ``random_state`` takes for a run's ``seed`` (0 to 2**63 - 1): the
    seed itself below 2**32 (so results match ``random_state=seed``), else a generator seeded
    by its 32-bit words (:func:`numpy_seed`; scikit-learn refuses larger integers)."""
    if seed <= _MASK32:
        return seed
    return np.random.RandomState(numpy_seed(seed))


def set_rng_seed(seed: int) -> None:
    """Seed torch, Python's ``random`` and numpy's global generators from ``seed`` (0 to
    2**63 - 1), as ``pyro.set_rng_seed`` does for seeds below 2**32, for which numpy refuses
    anything larger (:func:`numpy_seed`)."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(numpy_seed(seed))


def _splitmix64(x: int) -> int:
    """One step of SplitMix64 (Steele et al. 2014): a bijective mix of a 64-bit integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def derived_seed(seed: int, *keys: int) -> int:
    """A seed for one piece of work (an image index, a rank, ...) derived from a run's seed, so
    that the piece draws the same numbers however the work is split. Non-negative, < 2**63."""
    x = _splitmix64(seed & _MASK64)
    for key in keys:
        x = _splitmix64(x ^ (key & _MASK64))
    return x >> 1


def rng_state() -> dict[str, Any]:
    """All RNG states a run depends on, as tensors and plain values (safe to ``torch.load``)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy(), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------ counter-based draws
# Draws keyed by (seed, data index, step, stream, element) rather than taken from a stream, so
# that each data point's numbers do not depend on which other points share its batch, on the
# batch size, on the number of processes or on the device. Every operation stays below 2**63
# in int64 (no reliance on overflow), so CPU and CUDA give the same bits.

_LOW32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, m: int) -> torch.Tensor:
    """(x * m) mod 2**32 for 0 <= x < 2**32, in int64 without overflow."""
    hi, lo = x >> 16, x & 0xFFFF
    return ((((hi * m) & 0xFFFF) << 16) + lo * m) & _LOW32


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """Chris Wellons' ``lowbias32`` integer hash on int64 tensors holding 32-bit values."""
    x = x & _LOW32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def stream_key(purpose: str) -> int:
    """A 64-bit key for a named use of random numbers (``"ais/forward/momentum"``, ...): two
    different names give unrelated keys (BLAKE2b), so no use can share another's numbers
    through a numbering convention."""
    if not isinstance(purpose, str) or not purpose:
        raise TypeError(f"a random stream is named by a non-empty string, got {purpose!r}")
    return int.from_bytes(hashlib.blake2b(purpose.encode(), digest_size=8).digest(), "little")


_UNIFORM, _NORMAL_RADIUS, _NORMAL_ANGLE = 0, 1, 2
"""The kind of draw, the last key of every counter-based stream: a normal stream's two
Box-Muller uniforms can never be the uniforms of a stream of the same or any other name."""


def _counter_bits(
    seed: int,
    index: torch.Tensor,
    step: int,
    stream: str,
    kind: int,
    shape: tuple[int, ...],
    dim: int,
) -> torch.Tensor:
    """Uniforms in (0, 1) keyed by (seed, step, stream, kind), data index and element."""
    device = index.device
    point_key = derived_seed(seed, step, stream_key(stream), kind) & _LOW32
    key = _hash32(torch.tensor(point_key, device=device))
    key = _hash32(key ^ _hash32(index.to(torch.int64)))  # one key per data point
    view = [1] * len(shape)
    view[dim] = len(index)
    others = [s for i, s in enumerate(shape) if i != dim]
    count = torch.arange(math.prod(others), device=device, dtype=torch.int64).reshape(others)
    count = count.unsqueeze(dim)  # the element counter, broadcast over data points
    bits = _hash32(_hash32(key.reshape(view) ^ count) + 0x9E3779B9)
    return (bits.double() + 0.5) / 2.0**32


def counter_uniform(
    seed: int, index: torch.Tensor, step: int, stream: str, shape: tuple[int, ...], dim: int = 1
) -> torch.Tensor:
    """Uniform draws in (0, 1) (float64) of ``shape``, where ``shape[dim]`` runs over the data
    points whose global indices are ``index``; every other coordinate is an element counter.
    ``stream`` names the use (see :func:`stream_key`). The same (seed, index, step, stream,
    element) always gives the same number."""
    return _counter_bits(seed, index, step, stream, _UNIFORM, shape, dim)


def counter_normal(
    seed: int, index: torch.Tensor, step: int, stream: str, shape: tuple[int, ...], dim: int = 1
) -> torch.Tensor:
    """Standard normal draws (float64) keyed like :func:`counter_uniform` (Box-Muller on two
    uniform streams of their own: neither is :func:`counter_uniform`'s stream of any name)."""
    u1 = _counter_bits(seed, index, step, stream, _NORMAL_RADIUS, shape, dim)
    u2 = _counter_bits(seed, index, step, stream, _NORMAL_ANGLE, shape, dim)
    return (-2.0 * u1.log()).sqrt() * torch.cos(2.0 * math.pi * u2)
