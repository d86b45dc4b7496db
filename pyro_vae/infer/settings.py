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

DEVICE_TYPES = ("cpu", "cuda")
"""The device types ``--device`` names (besides ``auto``)."""
MAX_DEVICE_INDEX = 127
"""The largest index ``cuda:N`` may name: PyTorch keeps a device index in 8 bits and wraps a
larger one (``cuda:128`` would be ``cuda:-128``)."""
FLOAT32_TINY = 1.1754943508222875e-38
"""The smallest positive normal float32 (``torch.finfo(torch.float32).tiny``): a weight or
scale below it is zero, or loses its precision, in the model's float32 arithmetic."""


def parse_device(name: object) -> tuple[str, int | None]:
    """``--device`` as (type, index): ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` with N written
    in ASCII digits, 0 <= N <= :data:`MAX_DEVICE_INDEX`. Raises :class:`ConfigError` with one
    sentence otherwise (whether device N exists is :func:`~.training.resolve_device`'s to say).
    """
    if not isinstance(name, str):
        raise ConfigError(f"--device must be a string, got {name!r}")
    kind, colon, index = name.partition(":")
    if name == "auto" or (kind in DEVICE_TYPES and not colon):
        return kind, None
    if kind == "cuda" and colon and index.isascii() and index.isdigit() and len(index) <= 3:
        if int(index) <= MAX_DEVICE_INDEX:
            return kind, int(index)
    raise ConfigError(
        f"--device {name!r}: give auto, cpu, cuda or cuda:N (N a device number in ASCII digits, "
        f"0 to {MAX_DEVICE_INDEX})"
    )


def jit_where_valid(elbo: str, builtin_parts: bool) -> bool:
    """What ``--jit`` is when not given: on for ``Trace_ELBO`` (the objective with a JIT-compiled
    version) when every part is one of the library's own, whose programs have the same
    structure at every step; off for a user's part, which may branch on tensor values (a traced
    program would freeze the branch it took), unless ``--jit`` asks for it."""
    return elbo in SUPPORTS_JIT and builtin_parts


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
        try:
            parse_device(self.device)
        except ConfigError:
            p.append(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
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
        p += kl_weight_problems(self.beta, self.kl_warmup)
        return p

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming every invalid option."""
        problems = self.problems()
        if problems:
            raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
