"""The names of the model's built-in parts and activations, known without importing torch (the
command line's parser reads them, so ``pyro-vae --help`` answers at once)."""

from __future__ import annotations

PART_KINDS: tuple[str, ...] = ("prior", "guide", "likelihood", "decoder")

BUILTIN_PARTS: dict[str, tuple[str, ...]] = {
    "prior": ("normal", "learned", "mog", "vamp", "two-layer", "two-layer-vamp"),
    "guide": ("diagonal", "full", "flow"),
    "likelihood": ("bernoulli", "gaussian", "gaussian-learned"),
    "decoder": ("mlp",),
}
"""Short names of the built-in parts of each kind (the keys of ``PRIORS``, ``GUIDES``,
``LIKELIHOODS`` and ``DECODERS``)."""

ACTIVATION_NAMES: tuple[str, ...] = ("softplus", "relu", "tanh", "elu")
"""The keys of :data:`pyro_vae.model.nets.ACTIVATIONS`."""
