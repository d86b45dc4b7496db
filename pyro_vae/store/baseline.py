"""The record of ``baseline.json``: finite mixtures fitted to the same data, scored exactly on
the same test images as the VAE, and the VAE's paired difference to the mixture chosen by
validation log p(x) (see :func:`pyro_vae.app.baseline.compare_with_mixtures`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .fields import Record, RecordError, count, items, nested, number, obj, shown, text

BASELINE_FORMAT = 1
"""The version of ``baseline.json`` this package writes (earlier files had none)."""


@dataclass(frozen=True, kw_only=True)
class MixtureScore(Record):
    """One fitted mixture: exact test log p(x) (mean over images, standard error), validation
    log p(x) (what the best is chosen by), bits per dimension, size, and the fit's cost."""

    WHAT: ClassVar[str] = "a mixture's scores"

    model: str = text()
    n_components: int = count()
    log_px: float = number()
    log_px_se: float = number(minimum=0)
    val_log_px: float | None = number(omit=True)
    bits_per_dim: float = number()
    num_parameters: int = count(0)
    em_iterations: int | None = count(0, omit=True)
    train_log_px: float | None = number(omit=True)
    seconds: float | None = number(omit=True, minimum=0)


@dataclass(frozen=True, kw_only=True)
class VAEScore(Record):
    """The VAE's importance-sampled test log p(x) on the same images, and its size (all its
    parameters, and those of p(x) alone: the encoder aside)."""

    WHAT: ClassVar[str] = "the VAE's scores"

    model: str | None = text(omit=True)
    parts: dict[str, Any] | None = obj(omit=True)
    log_px: float = number()
    log_px_se: float = number(minimum=0)
    bits_per_dim: float = number()
    num_parameters: int = count(0)
    generative_parameters: int | None = count(0, omit=True)
    num_samples: int = count()

    @property
    def parameters_of_px(self) -> int:
        """The parameters of p(x) (all of them, in files that do not say)."""
        if self.generative_parameters is None:
            return self.num_parameters
        return self.generative_parameters


@dataclass(frozen=True, kw_only=True)
class PairedDifference(Record):
    """Mean over the same images of a per-image difference, and its standard error."""

    WHAT: ClassVar[str] = "a paired difference"

    mean: float = number()
    se: float = number(minimum=0)


@dataclass(frozen=True, kw_only=True)
class Baseline(Record):
    """The mixtures, the VAE, which mixture is best (by ``best_chosen_by``) and the VAE's
    paired difference to it."""

    WHAT: ClassVar[str] = "a baseline comparison"

    format: int | None = count(1, omit=True)
    dataset: str | None = text(omit=True)
    pixels: str | None = text(omit=True)
    vae: VAEScore = nested(VAEScore)
    mixtures: tuple[MixtureScore, ...] = items(MixtureScore)
    best_mixture: str = text()
    best_chosen_by: str | None = text(omit=True)
    vae_minus_best_mixture: PairedDifference = nested(PairedDifference)

    @property
    def best(self) -> MixtureScore:
        """The row of the best mixture."""
        return next(r for r in self.mixtures if r.model == self.best_mixture)

    def check(self) -> None:
        if self.format not in (None, BASELINE_FORMAT):
            raise RecordError(f"format {shown(self.format)} is not one this version reads (1)")
        if not any(r.model == self.best_mixture for r in self.mixtures):
            raise RecordError(f"best_mixture {shown(self.best_mixture)} names none of the mixtures")
