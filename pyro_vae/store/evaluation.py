"""The records of ``evaluation.json``: one estimate of log p(x) per estimator setting.

``evaluation.json`` (``evaluation_<split>.json`` for another split) is :class:`Evaluations`:
``{"format": 2, "split": ..., "estimates": {key: estimate}, "bdmc": {key: sandwich}}``,
where an estimate is an :class:`ISEvaluation` (importance sampling) or an :class:`AISEvaluation`
(annealed importance sampling) and a sandwich a :class:`BDMCEvaluation`, each kept under the key
:func:`estimate_key` gives it. A file of pyro-vae 0.1 (no ``format``: one flat
importance-sampling summary) is read as the single entry ``is-K<K>``, marked ``legacy``.

Fields are spelled and ordered as the writers write them (:meth:`MarginalEstimate.summary`,
:meth:`AISEvaluation.summary`, :meth:`BDMCResult.summary` and the evaluation job's header), so
``from_json(d).to_json() == d`` for what they write. Diagnostics a run may lack (k-hat with
K < 50, a standard error of one image) are ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .fields import Record, RecordError, count, flag, number, obj, shown, text

EVALUATION_FORMAT = 2
"""The version of ``evaluation.json`` this package writes (0.1's flat file had none)."""


@dataclass(frozen=True, kw_only=True)
class Header(Record):
    """What was evaluated: data set, split, pixel treatment, seed, the model's description and
    the evaluated tensor's fingerprint (absent from files of pyro-vae 0.1)."""

    dataset: str | None = text(omit=True)
    split: str | None = text(omit=True)
    pixels: str | None = text(omit=True)
    seed: int | None = count(0, omit=True)
    model: dict[str, Any] | None = obj(omit=True)
    data_sha256: str | None = text(omit=True)
    first_images: int | None = count(1, omit=True)
    """Only the split's first that many images were evaluated (absent: all of them)."""

    METHOD: ClassVar[str] = ""

    @property
    def key(self) -> str:
        """The key this estimate is kept under in its file (:func:`estimate_key`)."""
        return estimate_key(self)

    def check(self) -> None:
        method = getattr(self, "method", None)
        if method not in (None, self.METHOD):
            raise RecordError(f"method must be {self.METHOD!r}, got {shown(method)}")


@dataclass(frozen=True, kw_only=True)
class ISEvaluation(Header):
    """Importance sampling with K = ``num_samples`` guide draws per image: log p(x), the ELBO
    of the same draws, their gap, effective sample sizes and Pareto k-hat."""

    WHAT: ClassVar[str] = "an importance-sampling estimate"
    METHOD: ClassVar[str] = "is"

    method: str | None = text(omit=True)  # absent from pyro-vae 0.1's files
    num_examples: int = count()
    num_samples: int = count()
    refine_steps: int | None = count(1, omit=True)
    """The proposal: q refined per image for that many steps (absent: the encoder's q)."""
    log_px: float = number()
    log_px_se: float | None = number(optional=True, minimum=0)
    log_px_mc_se: float | None = number(optional=True, minimum=0)
    elbo: float | None = number(optional=True)
    elbo_se: float | None = number(optional=True, minimum=0)
    gap: float | None = number(optional=True)
    gap_se: float | None = number(optional=True, minimum=0)
    ess_mean: float | None = number(optional=True, minimum=0)
    ess_median: float | None = number(optional=True, minimum=0)
    ess_min: float | None = number(optional=True, minimum=0)
    khat_mean: float | None = number(optional=True)
    khat_max: float | None = number(optional=True)
    khat_infinite: int | None = count(0, optional=True)
    khat_above: int | None = count(0, key="khat_above_0.7", optional=True)
    """Images whose Pareto k-hat exceeds 0.7 (``None``: not computed, K < 50)."""
    reliable: bool | None = flag(optional=True)
    bits_per_dim: float | None = number(optional=True, omit=True)
    elbo_bits_per_dim: float | None = number(optional=True, omit=True)
    seconds: float | None = number(omit=True, minimum=0)


@dataclass(frozen=True, kw_only=True)
class AISEvaluation(Header):
    """Annealed importance sampling with T = ``num_steps`` temperatures, C = ``num_chains``
    chains and L = ``num_leapfrog`` leapfrog steps, from the guide or the prior."""

    WHAT: ClassVar[str] = "an AIS estimate"
    METHOD: ClassVar[str] = "ais"

    method: str = text()
    num_examples: int = count()
    num_steps: int = count()
    num_chains: int = count()
    num_leapfrog: int = count()
    start: str | None = text(omit=True)
    reverse: bool | None = flag(omit=True)
    log_px: float = number()
    log_px_se: float | None = number(optional=True, minimum=0)
    log_px_mc_se: float | None = number(optional=True, minimum=0)
    ess_mean: float | None = number(optional=True, minimum=0)
    ess_min: float | None = number(optional=True, minimum=0)
    unreliable: int | None = count(0, optional=True)
    """Images whose chains' weights are too uneven (ESS below half the chains)."""
    reliable: bool | None = flag(optional=True)
    acceptance_mean: float | None = number(optional=True, minimum=0, maximum=1)
    acceptance_min: float | None = number(optional=True, minimum=0, maximum=1)
    step_size_median: float | None = number(optional=True, minimum=0)
    khat_max: float | None = number(optional=True, omit=True)
    bits_per_dim: float | None = number(optional=True, omit=True)
    seconds: float | None = number(omit=True, minimum=0)


@dataclass(frozen=True, kw_only=True)
class BDMCEvaluation(Header):
    """The BDMC sandwich on ``num_examples`` images simulated from the model: forward AIS (a
    stochastic lower bound), reverse AIS (a stochastic upper bound), their gap, and importance
    sampling on the same images when it ran (``is_*``)."""

    WHAT: ClassVar[str] = "a BDMC sandwich"
    METHOD: ClassVar[str] = "bdmc"

    method: str = text()
    num_examples: int = count()
    num_steps: int = count()
    num_chains: int = count()
    num_leapfrog: int = count()
    start: str | None = text(omit=True)
    lower: float = number()
    lower_se: float | None = number(optional=True, minimum=0)
    lower_mc_se: float | None = number(optional=True, minimum=0)
    upper: float = number()
    upper_se: float | None = number(optional=True, minimum=0)
    upper_mc_se: float | None = number(optional=True, minimum=0)
    gap: float = number()
    gap_se: float | None = number(optional=True, minimum=0)
    gap_mc_se: float | None = number(optional=True, minimum=0)
    gap_interval_below_zero: int | None = count(0, optional=True)
    gap_interval_median_width: float | None = number(optional=True, minimum=0)
    reliable_forward: bool | None = flag(optional=True)
    reliable_reverse: bool | None = flag(optional=True)
    unreliable_forward: int | None = count(0, optional=True)
    unreliable_reverse: int | None = count(0, optional=True)
    acceptance_forward: float | None = number(optional=True, minimum=0, maximum=1)
    acceptance_reverse: float | None = number(optional=True, minimum=0, maximum=1)
    is_num_samples: int | None = count(omit=True)
    is_log_px: float | None = number(omit=True)
    lower_minus_is: float | None = number(omit=True)
    lower_minus_is_se: float | None = number(optional=True, omit=True, minimum=0)
    seconds: float | None = number(omit=True, minimum=0)


@dataclass(frozen=True, kw_only=True)
class GapsEvaluation(Header):
    """The inference gaps (Cremer et al. 2018), nats per image: log p(x) by AIS, the
    encoder's ELBO and the ELBO* of q refined per image for ``refine_steps`` steps (each from
    ``num_samples`` draws), hence the approximation gap log p(x) - ELBO* and the amortization
    gap ELBO* - ELBO; ``*_se``: over images (paired), ``*_mc_se``: Monte Carlo error of the
    mean."""

    WHAT: ClassVar[str] = "an inference-gap analysis"
    METHOD: ClassVar[str] = "gaps"

    method: str = text()
    num_examples: int = count()
    refine_steps: int = count(0)
    num_samples: int = count()
    num_steps: int = count()
    num_chains: int = count()
    num_leapfrog: int = count()
    start: str | None = text(omit=True)
    log_px: float = number()
    log_px_se: float | None = number(optional=True, minimum=0)
    log_px_mc_se: float | None = number(optional=True, minimum=0)
    elbo: float = number()
    elbo_mc_se: float | None = number(optional=True, minimum=0)
    refined_elbo: float = number()
    refined_elbo_mc_se: float | None = number(optional=True, minimum=0)
    approximation_gap: float = number()
    approximation_gap_se: float | None = number(optional=True, minimum=0)
    approximation_gap_mc_se: float | None = number(optional=True, minimum=0)
    amortization_gap: float = number()
    amortization_gap_se: float | None = number(optional=True, minimum=0)
    amortization_gap_mc_se: float | None = number(optional=True, minimum=0)
    ais_unreliable: int | None = count(0, optional=True)
    seconds: float | None = number(omit=True, minimum=0)


Estimate = ISEvaluation | AISEvaluation
"""An estimate of a split's log p(x)."""

METHODS: dict[str, type[Header]] = {
    "is": ISEvaluation,
    "ais": AISEvaluation,
    "bdmc": BDMCEvaluation,
    "gaps": GapsEvaluation,
}
SECTIONS: dict[str, type[Header]] = {"bdmc": BDMCEvaluation, "gaps": GapsEvaluation}
"""The sections of ``evaluation.json`` besides ``estimates``, and what each holds."""


def estimate_from_json(
    value: Any,
) -> ISEvaluation | AISEvaluation | BDMCEvaluation | GapsEvaluation:
    """The estimate (or sandwich) in ``value``, of the kind its ``method`` names (absent:
    importance sampling, as pyro-vae 0.1 wrote it)."""
    if not isinstance(value, dict):
        raise RecordError("not a JSON object (an estimate)")
    method = value.get("method", "is")
    cls = METHODS.get(method) if isinstance(method, str) else None
    if cls is None:
        raise RecordError(f"unknown method {shown(method)}")
    return cls.from_json(value)


def estimate_key(estimate: Header | Mapping[str, Any]) -> str:
    """The key an estimate is kept under: ``is-K<K>``; ``ais-T<T>-C<C>-L<L>`` (``-prior``
    when started from the prior); ``bdmc-N<N>-T<T>-C<C>-L<L>``. Also of the settings alone,
    as a mapping of the fields that name them (``{"method": "is", "num_samples": 5000}``)."""
    if isinstance(estimate, Mapping):
        return _key_of_settings(estimate)
    if not isinstance(estimate, ISEvaluation | AISEvaluation | BDMCEvaluation | GapsEvaluation):
        raise TypeError(f"not an estimate: {type(estimate).__name__}")
    fields = ("method", "num_samples", "refine_steps", "num_steps", "num_chains")
    fields += ("num_leapfrog", "start", "first_images", "num_examples")
    settings = {f: getattr(estimate, f, None) for f in fields}
    return _key_of_settings({**settings, "method": estimate.METHOD})


def _key_of_settings(s: Mapping[str, Any]) -> str:
    method = s.get("method", "is")
    first = f"-first{s['first_images']}" if s.get("first_images") is not None else ""
    refined = f"-R{s['refine_steps']}" if s.get("refine_steps") is not None else ""
    if method == "is":
        return f"is-K{s['num_samples']}{refined}{first}"
    tail = f"T{s['num_steps']}-C{s['num_chains']}-L{s['num_leapfrog']}"
    tail += "-prior" if s.get("start") == "prior" else ""
    if method == "ais":
        return f"ais-{tail}{first}"
    if method == "bdmc":
        return f"bdmc-N{s['num_examples']}-{tail}"
    if method == "gaps":
        return f"gaps{refined}-{tail}{first}"
    raise ValueError(f"unknown estimation method {method!r}")


def cost(estimate: Estimate) -> tuple[int, int, int]:
    """How expensive an estimate was: any AIS above any importance sampling, then by work (a
    refined proposal above the encoder's at the same K)."""
    if isinstance(estimate, AISEvaluation):
        return 1, estimate.num_steps * estimate.num_chains * estimate.num_leapfrog, 0
    return 0, estimate.num_samples, estimate.refine_steps or 0


@dataclass(frozen=True, kw_only=True)
class Evaluations(Record):
    """What a run holds for one split: estimates by key, BDMC sandwiches by key, and which
    keys came from a version-0.1 file (whose points file has the old name)."""

    WHAT: ClassVar[str] = "an evaluation file"

    split: str
    estimates: dict[str, Estimate] = field(default_factory=dict)
    bdmc: dict[str, BDMCEvaluation] = field(default_factory=dict)
    gaps: dict[str, GapsEvaluation] = field(default_factory=dict)
    legacy: frozenset[str] = frozenset()
    format: int = EVALUATION_FORMAT

    def headline(self) -> tuple[str, Estimate] | None:
        """The estimate to quote in one line: the most expensive AIS (it is the tightest),
        else importance sampling with the largest K."""
        if not self.estimates:
            return None
        return max(self.estimates.items(), key=lambda item: cost(item[1]))

    def largest_is(self) -> ISEvaluation | None:
        """The importance-sampling estimate with the largest K (it carries the diagnostics)."""
        found = [e for e in self.estimates.values() if isinstance(e, ISEvaluation)]
        return max(found, key=lambda e: e.num_samples) if found else None

    def with_entry(self, estimate: Estimate | BDMCEvaluation | GapsEvaluation) -> Evaluations:
        """These evaluations with ``estimate`` added under its key (replacing one made the
        same way); the file written from them is of the current format."""
        sections = {"estimates": self.estimates, "bdmc": self.bdmc, "gaps": self.gaps}
        sections = {name: dict(entries) for name, entries in sections.items()}
        sections[_section_of(estimate)][estimate.key] = estimate
        return Evaluations(split=self.split, **sections)

    @classmethod
    def from_json(cls, value: Any, split: str = "test") -> Evaluations:
        """The evaluations in a parsed ``evaluation[_<split>].json``; a file without
        ``format`` is pyro-vae 0.1's flat importance-sampling summary."""
        if not isinstance(value, dict):
            raise RecordError("not a JSON object")
        if "format" not in value:
            estimate = ISEvaluation.from_json({**value, "method": "is"})
            key = estimate.key
            return cls(split=split, estimates={key: estimate}, legacy=frozenset({key}), format=1)
        if value["format"] != EVALUATION_FORMAT:
            raise RecordError(
                f"format {shown(value['format'])} is not one this version reads "
                f"({EVALUATION_FORMAT}); it may come from a newer pyro-vae"
            )
        sections: dict[str, dict[str, Any]] = {}
        for section in ("estimates", *SECTIONS):
            entries = value.get(section, {})
            if not isinstance(entries, dict):
                raise RecordError(f"{section} must be a JSON object")
            sections[section] = {k: _entry(section, k, e) for k, e in entries.items()}
        return cls(split=split, **sections)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": EVALUATION_FORMAT, "split": self.split}
        out["estimates"] = {k: e.to_json() for k, e in self.estimates.items()}
        for section in SECTIONS:
            if getattr(self, section):
                out[section] = {k: b.to_json() for k, b in getattr(self, section).items()}
        return out


def _section_of(entry: Header) -> str:
    """The section of ``evaluation.json`` an entry belongs in."""
    return next((name for name, cls in SECTIONS.items() if isinstance(entry, cls)), "estimates")


def _entry(section: str, key: str, value: Any) -> Any:
    where = f"{section}[{key!r}]"
    try:
        entry = estimate_from_json(value)
    except RecordError as exc:
        raise RecordError(f"{where}: {exc}") from None
    if _section_of(entry) != section or entry.key != key:
        raise RecordError(f"the entry {key!r} holds an estimate of another kind ({entry.key})")
    return entry
