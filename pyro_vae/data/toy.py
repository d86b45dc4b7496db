"""Two-dimensional toy data, generated (no download), for pictures of learned densities.

Each generator returns ``[n, 2]`` float tensors, standardized to mean 0 and unit variance per
coordinate, so that one set of model sizes and one plotting window fit all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from ..rng import random_state


def _standardize(points: np.ndarray) -> torch.Tensor:
    points = (points - points.mean(0)) / points.std(0)
    return torch.from_numpy(points.astype(np.float32))


def two_moons(n: int, seed: int = 0, noise: float = 0.06) -> torch.Tensor:
    """scikit-learn's two interleaving half circles."""
    from sklearn.datasets import make_moons

    return _standardize(make_moons(n, noise=noise, random_state=random_state(seed))[0])


def rings(n: int, seed: int = 0, noise: float = 0.04) -> torch.Tensor:
    """scikit-learn's two concentric circles (radii 1 and 0.5)."""
    from sklearn.datasets import make_circles

    return _standardize(
        make_circles(n, noise=noise, factor=0.5, random_state=random_state(seed))[0]
    )


def pinwheel(
    n: int,
    seed: int = 0,
    arms: int = 5,
    radial_std: float = 0.3,
    tangential_std: float = 0.05,
    rate: float = 0.25,
) -> torch.Tensor:
    """The pinwheel of Johnson et al. (2016): ``arms`` curved, stretched Gaussian clusters."""
    rng = np.random.RandomState(seed)
    rads = np.linspace(0, 2 * math.pi, arms, endpoint=False)
    features = rng.randn(n, 2) * np.array([radial_std, tangential_std])
    features[:, 0] += 1.0
    labels = np.arange(n) % arms
    angles = rads[labels] + rate * np.exp(features[:, 0])
    rotations = np.stack([np.cos(angles), -np.sin(angles), np.sin(angles), np.cos(angles)], -1)
    rotations = rotations.reshape(-1, 2, 2)
    points = np.einsum("ti,tij->tj", features, rotations)
    return _standardize(points[rng.permutation(n)])


def spiral(n: int, seed: int = 0, noise: float = 0.05, turns: float = 1.5) -> torch.Tensor:
    """One arm of an Archimedean spiral with Gaussian noise: a 1-D manifold in the plane."""
    rng = np.random.RandomState(seed)
    t = np.sqrt(rng.rand(n)) * turns * 2 * math.pi
    points = np.stack([t * np.cos(t), t * np.sin(t)], -1) / (turns * 2 * math.pi)
    return _standardize(points + noise * rng.randn(n, 2))


TOY_DATASETS: dict[str, Callable[..., torch.Tensor]] = {
    "moons": two_moons,
    "rings": rings,
    "pinwheel": pinwheel,
    "spiral": spiral,
}
"""2-D toy data sets by name: ``generator(n, seed=0) -> [n, 2]``."""


def make_toy(name: str, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` points of the named toy data set."""
    if name not in TOY_DATASETS:
        raise ValueError(f"unknown toy data set {name!r}; choose from {sorted(TOY_DATASETS)}")
    return TOY_DATASETS[name](n, seed=seed)
