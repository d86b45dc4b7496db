"""The names a setting may take, known without importing torch (the command line's parser reads
them, so ``pyro-vae --help`` answers at once): the data sets, pixel schemes, built-in parts,
activations, objectives and learning-rate schedules, and the parts installed packages publish.

Each table is the key set of the torch-side registry it names (``DATASETS``, ``PRIORS``,
``ELBOS``, ...); a test checks that they agree."""

from __future__ import annotations

from importlib import metadata

from .builtins import builtin_parts
from .datasets import DATA_SETS
from .objectives import OBJECTIVES, names_where
from .pixels import BINARY_SCHEMES, PIXEL_SCHEMES  # noqa: F401  (re-exported)

DATA_DIMS: dict[str, int] = {d.name: d.data_dim for d in DATA_SETS.values()}
"""Pixels per image of each named data set (known without loading it: :mod:`.datasets`)."""

DATASET_NAMES: tuple[str, ...] = tuple(DATA_DIMS)
"""The named data sets (the keys of :data:`pyro_vae.data.datasets.DATASETS`)."""

PART_KINDS: tuple[str, ...] = ("prior", "guide", "likelihood", "decoder")

BUILTIN_PARTS: dict[str, tuple[str, ...]] = builtin_parts()
"""Short names of the built-in parts of each kind (the keys of ``PRIORS``, ``GUIDES``,
``LIKELIHOODS`` and ``DECODERS``, read from their source: :mod:`.builtins`)."""

ACTIVATION_NAMES: tuple[str, ...] = ("softplus", "relu", "tanh", "elu")
"""The keys of :data:`pyro_vae.model.nets.ACTIVATIONS`."""

ELBO_NAMES: tuple[str, ...] = tuple(OBJECTIVES)
"""The keys of :data:`pyro_vae.infer.objectives.ELBOS` (``--elbo``), declared in
:data:`~.objectives.OBJECTIVES`."""
SUPPORTS_KL_WEIGHT: tuple[str, ...] = names_where("kl_weighting")
SUPPORTS_JIT: tuple[str, ...] = names_where("jit")
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")
"""``--lr-schedule``: ``constant`` keeps ``lr``; ``cosine`` decays it over the run's steps,
lr_t = lr * (1 + cos(pi * t / T)) / 2 for step t of T = epochs * steps per epoch."""

ENTRY_POINT_GROUP = "pyro_vae.parts"


def entry_points(kind: str) -> dict[str, metadata.EntryPoint]:
    """Parts of ``kind`` that installed packages publish, by short name (not loaded)."""
    found = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        prefix, _, short = ep.name.partition(".")
        if prefix == kind and short:
            found[short] = ep
    return found


def part_names(kind: str) -> list[str]:
    """Short names usable for ``kind``: built-ins, then installed entry points."""
    builtin = sorted(BUILTIN_PARTS[kind])
    return builtin + sorted(set(entry_points(kind)) - set(builtin))
