"""The autoencoder baseline, interpolations and their judges, latent embeddings, the report."""

from __future__ import annotations

import pyro
import torch

from pyro_vae import ModelConfig, build_vae
from pyro_vae.app.latent import (
    choose_pairs,
    embed_2d,
    interpolation_paths,
    judged_frames,
    score_paths,
)
from pyro_vae.infer.autoencoder import train_autoencoder
from pyro_vae.infer.training import ImageData
from pyro_vae.model.autoencoder import Autoencoder
from pyro_vae.model.mixtures import BernoulliMixture


def test_autoencoder_learns_to_reconstruct(digits):
    torch.manual_seed(0)
    ae = Autoencoder(64, 8, [64])
    history = train_autoencoder(ae, ImageData(digits, "dynamic", torch.device("cpu")), epochs=15)
    assert history[-1]["val_loss"] < 0.7 * history[0]["val_loss"]
    x = torch.bernoulli(torch.full((5, 64), 0.5))
    assert ae.encode(x).shape == (5, 8)
    recon = ae.decode(ae.encode(x))
    assert recon.shape == (5, 64) and recon.min() >= 0 and recon.max() <= 1


def test_interpolation_paths_start_and_end_at_the_endpoints_codes():
    torch.manual_seed(0)
    ae = Autoencoder(10, 3, [16])
    x_a, x_b = torch.rand(4, 10), torch.rand(4, 10)
    paths = interpolation_paths(ae.encode, ae.decode, x_a, x_b, steps=5)
    assert paths.shape == (4, 5, 10)
    with torch.no_grad():
        assert torch.allclose(paths[:, 0], ae.decode(ae.encode(x_a)), atol=1e-6)
        assert torch.allclose(paths[:, -1], ae.decode(ae.encode(x_b)), atol=1e-6)
        middle = ae.decode(0.5 * (ae.encode(x_a) + ae.encode(x_b)))
    assert torch.allclose(paths[:, 2], middle, atol=1e-6)


def test_pairs_go_from_one_class_to_the_other():
    labels = torch.tensor([0, 2, 9, 2, 5, 9, 9])
    pairs = choose_pairs(labels, 10, classes=(2, 9))
    assert pairs.shape == (10, 2)
    assert (labels[pairs[:, 0]] == 2).all() and (labels[pairs[:, 1]] == 9).all()
    other = choose_pairs(torch.tensor([0, 1, 1, 3]), 5, classes=(2, 9))
    labels2 = torch.tensor([0, 1, 1, 3])
    assert (labels2[other[:, 0]] != labels2[other[:, 1]]).all()


def test_frames_are_judged_as_their_most_probable_image():
    paths = torch.tensor([[[0.2, 0.7], [0.5, 0.51]]])  # [1 pair, 2 steps, 2 pixels]
    assert torch.equal(judged_frames(paths, binary=True), torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    assert torch.equal(judged_frames(paths, binary=False), paths.reshape(2, 2))
    g = torch.Generator().manual_seed(0)
    mixture = BernoulliMixture(2).fit(torch.bernoulli(torch.full((50, 2), 0.5), generator=g))
    scores = score_paths(mixture, paths, binary=True)
    expected = mixture.log_prob(torch.tensor([[0.0, 1.0], [0.0, 1.0]])).reshape(1, 2)
    assert torch.allclose(scores, expected.float())


def test_a_vae_judges_by_importance_sampling(digits):
    pyro.set_rng_seed(0)
    vae = build_vae(ModelConfig(latent_dim=3, hidden=[16]), 64)
    paths = torch.rand(2, 3, 64)
    scores = score_paths(vae, paths, binary=True, num_samples=50)
    assert scores.shape == (2, 3) and torch.isfinite(scores).all()


def test_embeddings_keep_2d_codes_and_use_tsne_above():
    z2 = torch.randn(30, 2)
    points, label = embed_2d(z2)
    assert torch.equal(points, z2) and label == "z"
    points, label = embed_2d(torch.randn(40, 8))
    assert points.shape == (40, 2) and "t-SNE" in label
