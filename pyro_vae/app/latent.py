"""Looking at latent spaces: interpolations between codes, their scores, 2-D embeddings."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..infer.marginal import log_marginal
from ..model.vae import VAE
from ..rng import random_state


def choose_pairs(
    labels: torch.Tensor, n_pairs: int, classes: tuple[int, int] = (2, 9), seed: int = 0
) -> torch.Tensor:
    """``[n_pairs, 2]`` indices of (a, b) pairs with a of class ``classes[0]`` and b of class
    ``classes[1]`` (the "2 to 9" example), or of two different random classes when the labels
    do not have those, or of two different random images when all are of one class."""
    g = torch.Generator().manual_seed(seed)
    first = (labels == classes[0]).nonzero().flatten()
    second = (labels == classes[1]).nonzero().flatten()
    if len(first) and len(second):
        a = first[torch.randint(len(first), (n_pairs,), generator=g)]
        b = second[torch.randint(len(second), (n_pairs,), generator=g)]
        return torch.stack([a, b], -1)
    n = len(labels)
    if n == 0:
        raise ValueError("interpolation pairs need at least one image")
    if len(labels.unique()) < 2:  # one class: two different images of it (one image: itself)
        a = torch.randint(n, (n_pairs,), generator=g)
        b = (a + 1 + torch.randint(max(n - 1, 1), (n_pairs,), generator=g)) % n
        return torch.stack([a, b], -1)
    pairs = []
    while len(pairs) < n_pairs:
        i, j = torch.randint(len(labels), (2,), generator=g).tolist()
        if labels[i] != labels[j]:
            pairs.append((i, j))
    return torch.tensor(pairs)


@torch.no_grad()
def interpolation_paths(
    encode: Callable[[torch.Tensor], torch.Tensor],
    decode: Callable[[torch.Tensor], torch.Tensor],
    x_a: torch.Tensor,
    x_b: torch.Tensor,
    steps: int = 9,
) -> torch.Tensor:
    """Decode the straight line between the codes of ``x_a[i]`` and ``x_b[i]``:
    z_t = (1 - t) f(x_a) + t f(x_b) for ``steps`` values of t in [0, 1]. ``[P, steps, D]``."""
    z_a, z_b = encode(x_a), encode(x_b)
    t = torch.linspace(0, 1, steps, device=z_a.device).view(1, steps, 1)
    z = (1 - t) * z_a.unsqueeze(1) + t * z_b.unsqueeze(1)
    return decode(z.reshape(-1, z.shape[-1])).reshape(len(x_a), steps, -1)


def judged_frames(paths: torch.Tensor, binary: bool) -> torch.Tensor:
    """What a judge scores: for binary data each frame's most probable binary image (pixels
    above 1/2), so that a blurry frame and a sharp one are compared as images, not as noise
    from sampling grey pixels; continuous frames as they are. ``[P * steps, D]``."""
    frames = paths.reshape(-1, paths.shape[-1]).clamp(0, 1)
    return (frames > 0.5).to(frames.dtype) if binary else frames


@torch.no_grad()
def score_paths(
    judge,
    paths: torch.Tensor,
    binary: bool = True,
    num_samples: int = 500,
    seed: int = 0,
) -> torch.Tensor:
    """log p(frame) of every frame (see :func:`judged_frames`) under a ``judge``: a VAE
    (importance sampling) or anything with an exact ``log_prob`` (a finite mixture).
    ``[P, steps]`` in nats."""
    p, s, _ = paths.shape
    frames = judged_frames(paths, binary)
    if isinstance(judge, VAE):
        estimate = log_marginal(
            judge.model, judge.guide, frames, num_samples, seed=seed, diagnostics=False
        )
        return estimate.log_px.reshape(p, s)
    return judge.log_prob(frames.cpu()).reshape(p, s).float()


def embed_2d(z: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, str]:
    """Codes as 2-D points: themselves for a 2-D latent space, else scikit-learn's t-SNE."""
    if z.shape[1] == 1:
        return torch.cat([z, torch.zeros_like(z)], -1), "z (1-D)"
    if z.shape[1] == 2:
        return z, "z"
    from sklearn.manifold import TSNE

    perplexity = min(30.0, max(5.0, (len(z) - 1) / 3))
    points = TSNE(
        2, init="pca", random_state=random_state(seed), perplexity=perplexity
    ).fit_transform(z.double().cpu().numpy())
    return torch.from_numpy(points).float(), "t-SNE of E_q[z | x]"
