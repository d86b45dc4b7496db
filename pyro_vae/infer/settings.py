"""How to train, as plain data: :class:`TrainConfig`, its defaults and the names of the
objectives, known without importing torch (the command line's parser reads them, so
``pyro-vae --help`` answers at once). The objectives themselves are in :mod:`.objectives`."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..checks import Problems
from ..errors import ConfigError

ELBO_NAMES: tuple[str, ...] = ("trace", "meanfield", "iwae", "iwae-dreg")
"""The keys of :data:`pyro_vae.infer.objectives.ELBOS` (``--elbo``)."""
SUPPORTS_KL_WEIGHT = ("trace", "meanfield")
SUPPORTS_JIT = ("trace",)
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")
"""``--lr-schedule``: ``constant`` keeps ``lr``; ``cosine`` decays it over the run's steps,
lr_t = lr * (1 + cos(pi * t / T)) / 2 for step t of T = epochs * steps per epoch."""

DEFAULT_EPOCHS = {"digits": 500, "mnist": 50, "fashion-mnist": 50}
"""Epochs when none are given: the default ``digits`` run takes about a minute on two CPU
cores."""

MAX_SEED = 2**63 - 1


def jit_where_valid(elbo: str, builtin_parts: bool) -> bool:
    """What ``--jit`` is when not given: on for ``Trace_ELBO`` (the objective with a JIT-compiled
    version) when every part is one of the library's own, whose programs have the same
    structure at every step; off for a user's part, which may branch on tensor values (a traced
    program would freeze the branch it took), unless ``--jit`` asks for it."""
    return elbo in SUPPORTS_JIT and builtin_parts


@dataclass
class TrainConfig:
    """How to train: the SVI objective, optimizer and schedule (``--epochs`` ... options)."""

    epochs: int | None = None  # None: DEFAULT_EPOCHS of the data set
    batch_size: int = 128
    lr: float = 3e-3
    lr_schedule: str = "constant"
    seed: int = 0
    device: str = "auto"
    elbo: str = "trace"
    particles: int = 1
    jit: bool | None = None  # None: JIT where valid (jit_where_valid), decided on resolving
    eval_particles: int = 10
    beta: float = 1.0  # weight of the KL term
    kl_warmup: int = 0  # epochs over which the KL weight rises linearly to beta

    def with_epochs_for(self, dataset: str) -> TrainConfig:
        """A copy whose ``epochs`` is set (the data set's default when it was None)."""
        if self.epochs is not None:
            return replace(self)
        return replace(self, epochs=DEFAULT_EPOCHS.get(dataset, 50))

    def problems(self) -> Problems:
        """Every invalid option, one sentence each (empty when all are valid)."""
        p = Problems()
        if self.epochs is not None:
            p.integer("epochs", self.epochs)
        p.integer("batch-size", self.batch_size)
        p.positive_number("lr", self.lr)
        p.choice("lr-schedule", self.lr_schedule, LR_SCHEDULES)
        p.integer("seed", self.seed, minimum=0, maximum=MAX_SEED)
        device = self.device
        if not isinstance(device, str) or not (
            device in ("auto", "cpu", "cuda")
            or (device.startswith("cuda:") and device[5:].isdigit())
        ):
            p.append(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
        p.choice("elbo", self.elbo, ELBO_NAMES)
        p.integer("particles", self.particles)
        if self.jit is not None:
            p.boolean("jit", self.jit)
        p.integer("eval-particles", self.eval_particles)
        p.positive_number("beta", self.beta)
        p.integer("kl-warmup", self.kl_warmup, minimum=0)
        if p:
            return p
        if self.elbo not in SUPPORTS_KL_WEIGHT and (self.beta != 1 or self.kl_warmup):
            p.append(f"--beta and --kl-warmup apply to the ELBO, not --elbo {self.elbo}")
        if self.elbo not in SUPPORTS_JIT and self.jit:
            p.append(f"--jit is not available for --elbo {self.elbo}")
        if self.elbo in ("iwae", "iwae-dreg") and self.particles < 2:
            p.append(f"--elbo {self.elbo} needs --particles K >= 2 (with K = 1 it is the ELBO)")
        return p

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming every invalid option."""
        problems = self.problems()
        if problems:
            raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
