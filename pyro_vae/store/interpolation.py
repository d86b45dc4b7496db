"""The record of ``interpolation.json``: straight lines between the codes of pairs of test
images, decoded by a plain autoencoder and by the VAE, each interior frame scored by judges
that decoded neither path (see :func:`pyro_vae.app.interpolation.interpolation_study`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .fields import Record, RecordError, count, custom, is_count, mapping, number, shown, text

INTERPOLATION_FORMAT = 1
"""The version of ``interpolation.json`` this package writes (earlier files had none)."""


@dataclass(frozen=True, kw_only=True)
class JudgeScores(Record):
    """One judge's mean log p(x) of the interior frames of each model's paths, and the VAE's
    paired difference to the autoencoder (mean over pairs, with its standard error)."""

    WHAT: ClassVar[str] = "a judge's scores"

    autoencoder_mean_log_px: float | None = number(omit=True)
    vae_mean_log_px: float | None = number(omit=True)
    vae_minus_autoencoder: float = number()
    vae_minus_autoencoder_se: float = number(minimum=0)


@dataclass(frozen=True, kw_only=True)
class Interpolation(Record):
    """``pairs`` pairs of test images of ``classes`` (the first pair's), ``steps`` frames per
    line; ``frames`` says how a frame was scored; ``judges`` by name, the figure showing
    ``plotted_judge``'s scores."""

    WHAT: ClassVar[str] = "an interpolation result"

    format: int | None = count(1, omit=True)
    pairs: int = count()
    steps: int | None = count(omit=True)
    classes: tuple[int, int] = custom(
        lambda v: isinstance(v, list) and len(v) == 2 and all(is_count(c) for c in v),
        "a list of two class labels (integers)",
        read=lambda v, _: tuple(v),
        write=list,
    )
    frames: str = text()
    judges: dict[str, JudgeScores] = mapping(JudgeScores)
    plotted_judge: str | None = text(omit=True)

    @property
    def binary(self) -> bool:
        """Whether each frame was scored as its most probable binary image."""
        return self.frames.startswith("most probable")

    def check(self) -> None:
        if self.format not in (None, INTERPOLATION_FORMAT):
            raise RecordError(f"format {shown(self.format)} is not one this version reads (1)")
        if self.plotted_judge is not None and self.plotted_judge not in self.judges:
            raise RecordError(f"plotted_judge {shown(self.plotted_judge)} is not one of judges")
