"""How to train, as plain data: :class:`TrainConfig` (each field declared once, see
:mod:`.declare`), the epochs of each data set, and the rules that relate the training options
(which objective takes a KL weight, a JIT, several particles: read from each objective's
declaration in :mod:`.objectives`). Their implementations are in
:mod:`pyro_vae.infer.objectives`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from typing import ClassVar

from ..checks import Problems
from ..errors import ConfigError
from .capabilities import objective_problems
from .constraints import MAX_INT, Boolean, Device, Integer, OneOf, PositiveNumber
from .datasets import DATA_SETS
from .declare import field_problems, setting
from .names import ELBO_NAMES, LR_SCHEDULES
from .objectives import elbo_help, names_where, objective

DEFAULT_EPOCHS = {d.name: d.epochs for d in DATA_SETS.values()}
"""Epochs when none are given (each data set's declaration, :mod:`.datasets`): the default
``digits`` run takes about a minute on two CPU cores."""

MAX_SEED = MAX_INT

FLOAT32_TINY = 1.1754943508222875e-38
"""The smallest positive normal float32 (``torch.finfo(torch.float32).tiny``): a weight or
scale below it is zero, or loses its precision, in the model's float32 arithmetic."""


def jit_where_valid(elbo: str, builtin_parts: bool) -> bool:
    """What ``--jit`` is when not given, given whether every part is pyro-vae's own (see
    :func:`~.objectives.jit_default`, the rule the configuration and the trainer apply)."""
    return objective(elbo).jit and builtin_parts


def kl_weight_problems(beta: float, kl_warmup: int) -> list[str]:
    """The KL weight's first value, beta / kl_warmup (beta without warm-up), must be a normal
    float32 number: a smaller one is zero in the model's arithmetic (Pyro refuses a zero
    scale)."""
    first = beta * min(1.0, 1 / kl_warmup) if kl_warmup else beta
    if first >= FLOAT32_TINY:
        return []
    given = f"--beta {beta:g}" + (f" with --kl-warmup {kl_warmup}" if kl_warmup else "")
    return [
        f"{given} makes the first epoch's KL weight {first:.3g}, below {FLOAT32_TINY:.3g} (the "
        "smallest normal float32 number), where it is zero in the model's arithmetic: give a "
        "larger --beta or a shorter --kl-warmup"
    ]


@dataclass
class TrainConfig:
    """How to train: the SVI objective, optimizer and schedule (``--epochs``, ``--lr``, ...)."""

    GROUP: ClassVar[str] = "training"

    epochs: int | None = setting(  # None: DEFAULT_EPOCHS of the data set
        None,
        Integer(1),
        "passes over the training set",
        default_words=", ".join(f"{k} {v}" for k, v in DEFAULT_EPOCHS.items()),
    )
    batch_size: int = setting(128, Integer(1), "minibatch size")
    lr: float = setting(3e-3, PositiveNumber(), "Adam learning rate")
    lr_schedule: str = setting(
        "constant",
        OneOf(LR_SCHEDULES),
        "constant, or cosine: decay the learning rate from --lr towards 0 over the run's steps, "
        "lr (1 + cos(pi t / T)) / 2",
    )
    seed: int = setting(0, Integer(0, MAX_SEED), "random seed")
    device: str = setting("auto", Device(), "auto (CUDA when present), cpu, cuda or cuda:N")
    elbo: str = setting(
        "trace",
        OneOf(tuple(sorted(ELBO_NAMES))),
        elbo_help(),
    )
    particles: int = setting(
        1,
        Integer(1),
        "guide samples per example in the training objective; the K of --elbo "
        + " and ".join(names_where("min_particles")),
        metavar="K",
    )
    beta: float = setting(1.0, PositiveNumber(), "weight of the KL term (beta-VAE)")
    kl_warmup: int = setting(  # epochs over which the KL weight rises linearly to beta
        0,
        Integer(0),
        "epochs over which the KL weight rises linearly from beta/E to beta",
        default_words="0, no warm-up",
        metavar="E",
    )
    jit: bool | None = setting(  # None: JIT where valid (jit_where_valid), decided on resolving
        None,
        Boolean(),
        "compile the ELBO into one graph: by torch.compile for a run with 10,000 or more steps "
        "(faster steps, seconds to compile), else by Pyro's JitTrace_ELBO (torch.jit.trace)",
        default_words=f"on for --elbo {' and '.join(names_where('jit'))} with the library's own "
        "parts, off otherwise",
        action=argparse.BooleanOptionalAction,
    )
    eval_particles: int = setting(
        10, Integer(1), "guide samples per example for the validation ELBO"
    )

    def with_epochs_for(self, dataset: str) -> TrainConfig:
        """A copy whose ``epochs`` is set (the data set's default when it was None)."""
        if self.epochs is not None:
            return replace(self)
        return replace(self, epochs=DEFAULT_EPOCHS.get(dataset, 50))

    def problems(self) -> Problems:
        """Every invalid option, one sentence each (empty when all are valid): each field's
        own constraint, then, when those hold, the rules between the fields."""
        p = field_problems(self)
        if p:
            return p
        p += objective_problems(self.elbo, self.particles, self.jit, self.beta, self.kl_warmup)
        p += kl_weight_problems(self.beta, self.kl_warmup)
        return p

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming every invalid option."""
        problems = self.problems()
        if problems:
            raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
