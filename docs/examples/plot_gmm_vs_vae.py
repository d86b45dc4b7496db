"""
A finite mixture against the VAE
================================

A VAE is a continuous mixture: infinitely many components, tied together by the decoder. Its
finite counterpart for binary images is a mixture of K Bernoulli templates
(:class:`~pyro_vae.BernoulliMixture`), fitted by EM, whose log p(x) is exact. Both are scored
on the same statically binarized ``digits`` test images; the VAE's log p(x) is importance
sampled, and the difference is paired per image.
"""

import matplotlib.pyplot as plt
import pyro
import torch

from pyro_vae import (
    BernoulliMixture,
    ModelConfig,
    TrainConfig,
    Trainer,
    build_vae,
    eval_view,
    load_dataset,
    log_marginal,
)

torch.set_num_threads(1)
pyro.set_rng_seed(0)
data = load_dataset("digits")
train = eval_view(
    data.train, data.levels, "static", "train"
)  # one fixed binarization
val = eval_view(data.val, data.levels, "static", "val")
test = eval_view(data.test, data.levels, "static", "test")

mixtures = {
    k: BernoulliMixture(k, seed=0).fit(train.double()) for k in (1, 10, 30)
}
mixture_lp = {
    k: m.log_prob(test.double()).float() for k, m in mixtures.items()
}

vae = build_vae(
    ModelConfig(latent_dim=8, hidden=[128]), data_dim=data.data_dim
)
Trainer(
    vae, TrainConfig(epochs=30, seed=0), data, pixels="static", progress=False
).fit()
with torch.no_grad():
    vae_lp = log_marginal(
        vae.model, vae.guide, test, num_samples=500, seed=0
    ).log_px


def mean_se(v: torch.Tensor) -> str:
    """Mean and standard error over the test images."""
    return f"{v.mean():8.3f} +- {v.std() / len(v) ** 0.5:.3f}"


for k, lp in mixture_lp.items():
    print(
        f"BernoulliMixture(K={k:2d})  {mean_se(lp)}"
        f"  ({mixtures[k].num_parameters:,} parameters)"
    )
print(
    f"VAE, latent 8          {mean_se(vae_lp)}  (importance sampling, K = 500)"
)
best = max(
    mixtures, key=lambda k: mixtures[k].score(val.double())
)  # chosen on validation images
print(
    f"VAE - BernoulliMixture(K={best}) (best on validation),"
    " paired over the test images: "
    f"{mean_se(vae_lp - mixture_lp[best])}"
)

# %%
# What each model has learned: the mixture's ten templates E[x | k], and the VAE's decoder
# means for ten draws from its prior.

with torch.no_grad():
    z = vae.prior().sample((10,))
    vae_means = vae.likelihood(vae.decoder(z)).mean
templates = mixtures[10].component_means().float()
fig, axes = plt.subplots(2, 10, figsize=(8, 2))
for row, images, title in [
    (0, templates, "K=10 templates"),
    (1, vae_means, "VAE"),
]:
    for ax, image in zip(axes[row], images, strict=True):
        ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[row, 0].set_ylabel(title, fontsize=8)
fig.tight_layout()
