"""The names a setting may take, known without importing torch (the command line's parser reads
them, so ``pyro-vae --help`` answers at once): the data sets, pixel schemes, built-in parts,
activations, objectives and learning-rate schedules, and the parts installed packages publish.

Each table is the key set of the torch-side registry it names (``DATASETS``, ``PRIORS``,
``ELBOS``, ...); a test checks that they agree."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
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

ACTIVATION_NAMES: tuple[str, ...] = ("softplus", "relu", "tanh", "elu", "gated")
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


def installed_path() -> list[str]:
    """``sys.path`` without the current directory (``''``, ``.``, its absolute path or a link
    to it) and relative entries: where installed packages' metadata is read. A
    ``*.dist-info`` or ``*.egg-info`` in the folder one ``cd``s into (a download, a run
    directory) is not an installed package, and its entry points name no trusted code."""
    try:
        here = os.path.realpath(os.getcwd())
    except OSError:  # the current directory is gone
        here = None
    return [
        entry
        for entry in sys.path
        if isinstance(entry, str)
        and os.path.isabs(entry)
        and (here is None or os.path.realpath(entry) != here)
    ]


@contextlib.contextmanager
def _installed_only() -> Iterator[None]:
    """While active, ``sys.path`` is :func:`installed_path` (``importlib.metadata`` reads
    package metadata from ``sys.path``)."""
    saved = list(sys.path)
    sys.path[:] = installed_path()
    try:
        yield
    finally:
        sys.path[:] = saved


def entry_points(kind: str) -> dict[str, metadata.EntryPoint]:
    """Parts of ``kind`` that installed packages publish, by short name (not loaded): read
    from :func:`installed_path`, never from package metadata in the current directory."""
    with _installed_only():
        published = metadata.entry_points(group=ENTRY_POINT_GROUP)
    found = {}
    for ep in published:
        prefix, _, short = ep.name.partition(".")
        if prefix == kind and short:
            found[short] = ep
    return found


def part_names(kind: str) -> list[str]:
    """Short names usable for ``kind``: built-ins, then installed entry points."""
    builtin = sorted(BUILTIN_PARTS[kind])
    return builtin + sorted(set(entry_points(kind)) - set(builtin))
