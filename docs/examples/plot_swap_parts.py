"""
Swap the prior and the guide
============================

Every part of the VAE is chosen by name (the ``--prior``, ``--guide``, ``--likelihood`` and
``--decoder`` options of the command line, the fields of :class:`~pyro_vae.ModelConfig` in
Python), or written by hand: any ``nn.Module`` that follows a part's contract plugs in. Here
three priors and two guides train for the same few epochs on ``digits`` and are compared by
their validation ELBO, then a Laplace prior written in a few lines joins them.
"""

import matplotlib.pyplot as plt
import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pyro_vae import (
    MLP,
    VAE,
    BernoulliLikelihood,
    DiagonalGaussianGuide,
    ModelConfig,
    TrainConfig,
    Trainer,
    build_vae,
    load_dataset,
)

torch.set_num_threads(1)
data = load_dataset("digits")
train = TrainConfig(epochs=15, seed=0)


def fit(vae: nn.Module) -> float:
    """Train for ``train.epochs`` epochs; the last validation ELBO."""
    pyro.set_rng_seed(0)
    return Trainer(vae, train, data, progress=False).fit()[-1].val_elbo


scores = {}
for prior, guide in [
    ("normal", "diagonal"),
    ("mog", "diagonal"),
    ("vamp", "diagonal"),
    ("normal", "flow"),
]:
    cfg = ModelConfig(latent_dim=4, hidden=[64], prior=prior, guide=guide)
    scores[f"{prior} / {guide}"] = fit(build_vae(cfg, data_dim=data.data_dim))

# %%
# A part of your own
# ------------------
# A prior is a module whose ``forward()`` returns a distribution over z with event shape
# ``(latent_dim,)``. This one has learned scales; :class:`~pyro_vae.Prior` is the abstract base
# class with the whole contract, but duck typing is enough for Python use.


class LaplacePrior(nn.Module):
    """p(z) = prod_k Laplace(z_k; 0, b_k) with learned scales b."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.log_b = nn.Parameter(torch.zeros(latent_dim))

    def forward(self):
        return dist.Laplace(
            torch.zeros_like(self.log_b), self.log_b.exp()
        ).to_event(1)


vae = VAE(
    prior=LaplacePrior(4),
    guide=DiagonalGaussianGuide(data.data_dim, 4, hidden=[64]),
    decoder=MLP(4, [64], data.data_dim),
    likelihood=BernoulliLikelihood(),
)
scores["laplace (own) / diagonal"] = fit(vae)
for name, elbo in scores.items():
    print(f"{name:26s} validation ELBO {elbo:8.2f}")

# %%
# Higher is better. The validation ELBO is a bound, so this ranks bounds after 15 epochs;
# compare models by log p(x) itself (the next example) before concluding anything.

fig, ax = plt.subplots(figsize=(6, 2.8))
ax.barh(list(scores), list(scores.values()), color="tab:blue")
ax.set_xlim(min(scores.values()) - 1, max(scores.values()) + 0.5)
ax.set_xlabel("validation ELBO after 15 epochs (nats per image)")
ax.invert_yaxis()
fig.tight_layout()
