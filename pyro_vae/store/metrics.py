"""The record of one line of ``metrics.jsonl``: what training measured at the end of an epoch
(:class:`~pyro_vae.infer.training.EpochRecord` as written).

Lines carry no version of their own: a line without ``format`` is of format 1, the only one so
far; a line naming another is refused. Only ``epoch``, ``train_objective`` and ``val_elbo``
are required (files that hand-written tools produce hold little more); every other field, when
there, is checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .fields import Record, RecordError, count, number, shown

METRICS_FORMAT = 1
"""The version of a ``metrics.jsonl`` line this package writes and reads."""

_NOT_A_RECORD = (
    "not a metrics record (a JSON object with an integer epoch and numbers train_objective "
    "and val_elbo)"
)


@dataclass(frozen=True, kw_only=True)
class MetricsRecord(Record):
    """One epoch: its number, SVI steps and examples seen so far, the training objective (per
    image, averaged over the epoch), the validation ELBO, timings, the KL weight, and the
    test ELBO when the trainer monitored a test set."""

    WHAT: ClassVar[str] = "a metrics record"

    epoch: int = count(1)
    steps: int | None = count(0, omit=True)
    examples_seen: int | None = count(0, omit=True)
    train_objective: float = number()
    val_elbo: float = number()
    epoch_seconds: float | None = number(omit=True, minimum=0)
    wall_seconds: float | None = number(omit=True, minimum=0)
    kl_weight: float | None = number(omit=True, minimum=0)
    test_elbo: float | None = number(optional=True)

    @classmethod
    def from_json(cls, value: Any) -> MetricsRecord:
        """The record of one parsed line, every field it holds checked."""
        required = ("epoch", "train_objective", "val_elbo")
        if not isinstance(value, dict) or any(name not in value for name in required):
            raise RecordError(_NOT_A_RECORD)
        version = value.get("format", METRICS_FORMAT)
        if version != METRICS_FORMAT:
            raise RecordError(f"format {shown(version)} is not one this version reads (1)")
        return super().from_json({k: v for k, v in value.items() if k != "format"})
