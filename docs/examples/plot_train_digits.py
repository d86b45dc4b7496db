"""
Train a small VAE on digits
===========================

The default model of ``pyro-vae run`` in miniature: an MLP encoder and decoder, a learned
mixture of Gaussians as the prior, a Bernoulli likelihood of the grey levels, trained by SVI
with pyro-vae's :class:`~pyro_vae.Trainer`. Then draw new images from the model.
"""

import matplotlib.pyplot as plt
import pyro
import torch

from pyro_vae import ModelConfig, TrainConfig, Trainer, build_vae, load_dataset

torch.set_num_threads(1)
pyro.set_rng_seed(0)

data = load_dataset(
    "digits"
)  # 1,197 / 300 / 300 images of 8 x 8 pixels, 17 grey levels
vae = build_vae(
    ModelConfig(latent_dim=8, hidden=[128], prior="mog"),
    data_dim=data.data_dim,
)
history = Trainer(
    vae, TrainConfig(epochs=30, seed=0), data, progress=False
).fit()
print(
    f"validation ELBO after {len(history)} epochs:"
    f" {history[-1].val_elbo:.2f} nats per image"
)

# %%
# The training curve: the minibatch average of the training ELBO and the validation ELBO
# (10 guide samples per image, fixed seed) after every epoch.

epochs = [r.epoch for r in history]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(epochs, [r.train_objective for r in history], label="train ELBO")
ax.plot(epochs, [r.val_elbo for r in history], label="validation ELBO")
ax.set_xlabel("epoch")
ax.set_ylabel("nats per image")
ax.legend()
fig.tight_layout()

# %%
# New images: z ~ p(z) from the learned prior, then the decoder's mean E[x | z], the
# probability of each pixel being on.

with torch.no_grad():
    z = vae.prior().sample((32,))
    means = vae.likelihood(vae.decoder(z)).mean.reshape(-1, 8, 8)
fig, axes = plt.subplots(4, 8, figsize=(6, 3))
for ax, image in zip(axes.flat, means, strict=True):
    ax.imshow(image, cmap="gray_r", vmin=0, vmax=1)
    ax.axis("off")
fig.suptitle("samples: E[x | z], z ~ p(z)")
