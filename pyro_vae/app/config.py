"""Run configuration: plain dataclasses that round-trip through JSON (never pickle).

A run directory's ``config.json`` holds one :class:`RunConfig`; together with the checkpoint it
is all that is needed to rebuild the trained model. The model's parts are recorded as a name
(a built-in short name, an entry-point name, or an import path ``module:Class``) and the
keyword arguments the user gave; :mod:`pyro_vae.app.registry` turns them into parts. Nothing
here imports a part.

Format 2 (this version) records ``prior``/``prior_kwargs`` and likewise for the guide, the
likelihood and the decoder. Format 1 (pyro-vae 0.1) had one field per built-in option
(``components``, ``flows``, ``sigma``, ...); it is read and converted.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks import Problems
from ..data.names import DATASET_NAMES, PIXEL_SCHEMES
from ..errors import ConfigError
from ..infer.settings import DEFAULT_EPOCHS, MAX_SEED, TrainConfig
from ..model.names import ACTIVATION_NAMES, PART_KINDS
from .checkpoint import atomic_write_text
from .run_files import CONFIG, read_bytes
from .strict_json import JSONContentError, parse_json

CONFIG_FORMAT = 2

__all__ = [
    "CONFIG_FORMAT",
    "DEFAULT_EPOCHS",
    "DataConfig",
    "DistributedConfig",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
]

MAX_JSON_DEPTH = 8


@dataclass
class DataConfig:
    dataset: str = "digits"
    data_dir: str | None = None
    pixels: str | None = None  # default: "dynamic" for binary likelihoods, else "dequantized"
    download: bool = True

    def problems(self) -> Problems:
        p = Problems()
        p.choice("dataset", self.dataset, DATASET_NAMES)
        p.text("data-dir", self.data_dir, optional=True)
        if self.pixels is not None:
            p.choice("pixels", self.pixels, PIXEL_SCHEMES)
        p.boolean("download", self.download)
        return p


@dataclass
class ModelConfig:
    """The model: sizes shared by the parts, and each part as a name plus keyword arguments."""

    latent_dim: int = 20
    hidden: list[int] = field(default_factory=lambda: [400])
    activation: str = "relu"
    prior: str = "mog"
    prior_kwargs: dict[str, Any] = field(default_factory=dict)
    guide: str = "diagonal"
    guide_kwargs: dict[str, Any] = field(default_factory=dict)
    likelihood: str = "bernoulli"
    likelihood_kwargs: dict[str, Any] = field(default_factory=dict)
    decoder: str = "mlp"
    decoder_kwargs: dict[str, Any] = field(default_factory=dict)

    def part(self, kind: str) -> tuple[str, dict[str, Any]]:
        """The name and keyword arguments of the part of ``kind`` (prior, guide, ...)."""
        return getattr(self, kind), getattr(self, f"{kind}_kwargs")

    def problems(self) -> Problems:
        p = Problems()
        p.integer("latent-dim", self.latent_dim)
        if not isinstance(self.hidden, list) or not self.hidden:
            p.append(f"hidden must be a list of layer widths, got {self.hidden!r}")
        else:
            for width in self.hidden:
                p.integer("each hidden width", width)
        p.choice("activation", self.activation, ACTIVATION_NAMES)
        for kind in PART_KINDS:
            name, kwargs = self.part(kind)
            p.text(kind, name)
            if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
                p.append(f"{kind}-kwargs must be a JSON object, got {kwargs!r}")
            elif _depth(kwargs) > MAX_JSON_DEPTH:
                p.append(f"{kind}-kwargs is nested deeper than {MAX_JSON_DEPTH} levels")
        return p


@dataclass
class DistributedConfig:
    """How many processes trained the run (its latest epochs): a record, not an option;
    torchrun's ``--nproc_per_node`` and ``--nnodes`` choose it. With several processes,
    process r draws its random numbers in epoch e from ``derived_seed(process_seeds[r], e)``,
    ``process_seeds[r] = derived_seed(seed, r)`` (:mod:`pyro_vae.infer.distributed`); one
    process draws from ``seed`` as it always did."""

    processes: int = 1
    backend: str | None = None  # gloo or nccl with several processes
    process_seeds: list[int] = field(default_factory=list)

    def problems(self) -> Problems:
        p = Problems()
        p.integer("distributed processes", self.processes)
        if self.backend is not None:
            p.choice("distributed backend", self.backend, ("gloo", "nccl"))
        if not isinstance(self.process_seeds, list):
            p.append(f"process_seeds must be a list, got {self.process_seeds!r}")
        else:
            for seed in self.process_seeds:
                p.integer("each process seed", seed, minimum=0, maximum=MAX_SEED)
        return p


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


LEGACY_PART_OPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "prior": {"mog": ("components",), "vamp": ("pseudo_inputs",)},
    "guide": {"flow": ("flows", "flow_type")},
    "likelihood": {"gaussian": ("sigma",), "gaussian-learned": ("min_sigma",)},
}
"""Format 1's per-option fields, by the built-in part that read them."""
LEGACY_DEFAULTS = {
    "components": 10,
    "pseudo_inputs": 100,
    "flows": 2,
    "flow_type": "iaf",
    "sigma": 0.1,
    "min_sigma": 1e-3,
}


def _upgrade_model_section(values: dict[str, Any]) -> dict[str, Any]:
    """A format-1 ``model`` section as a format-2 one (same model, same parameters)."""
    values = dict(values)
    legacy = {k: values.pop(k, default) for k, default in LEGACY_DEFAULTS.items()}
    for kind, by_name in LEGACY_PART_OPTIONS.items():
        name = values.get(kind, ModelConfig.__dataclass_fields__[kind].default)
        if isinstance(name, str) and name in by_name:
            values[f"{kind}_kwargs"] = {k: legacy[k] for k in by_name[name]}
    if values.get("guide") == "full":  # 0.1's full-covariance guide had entries of L as outputs
        values["guide_kwargs"] = {"parameterization": "absolute"}
    return values


@dataclass
class RunConfig:
    """Everything that defines a run: data, model and training options."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)

    def copy(self) -> RunConfig:
        """A deep copy (sections and their lists and dicts are not shared)."""
        return RunConfig.from_dict(json.loads(json.dumps(self.to_dict())))

    def problems(self) -> Problems:
        """Every invalid option of the three sections (types, ranges, names); whether the
        parts exist and fit their options is the registry's to check."""
        p = Problems()
        for section in (self.data, self.model, self.train, self.distributed):
            p += section.problems()
        return p

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming every invalid option."""
        problems = self.problems()
        if problems:
            raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return {"format": CONFIG_FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, raw: Any) -> RunConfig:
        """Read a configuration (format 1 or 2) from parsed JSON, refusing unknown or
        mistyped sections and options. Values are checked by :meth:`validate`."""
        if not isinstance(raw, dict):
            raise ConfigError("a configuration must be a JSON object")
        raw = dict(raw)
        fmt = raw.pop("format", CONFIG_FORMAT)
        if fmt not in (1, CONFIG_FORMAT) or isinstance(fmt, bool):
            raise ConfigError(f"configuration format {fmt!r} is not supported")
        sections = {
            "data": DataConfig,
            "model": ModelConfig,
            "train": TrainConfig,
            "distributed": DistributedConfig,
        }
        unknown = set(raw) - set(sections)
        if unknown:
            raise ConfigError(f"unknown configuration sections: {', '.join(sorted(unknown))}")
        built = {}
        for name, section_cls in sections.items():
            values = raw.get(name, {})
            if not isinstance(values, dict):
                raise ConfigError(f"configuration section {name!r} must be a JSON object")
            if name == "model" and fmt == 1:
                values = _upgrade_model_section(values)
            known = {f.name for f in dataclasses.fields(section_cls)}
            bad = set(values) - known
            if bad:
                raise ConfigError(
                    f"unknown options in {name!r}: {', '.join(sorted(map(str, bad)))}"
                )
            built[name] = section_cls(**values)
        return cls(**built)

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike, root: str | os.PathLike | None = None) -> RunConfig:
        """Read ``path`` (a bounded regular file; with ``root``, the run directory it lies in,
        never through a link below ``root``: see :mod:`.run_files`)."""
        path = Path(path)
        try:
            raw = parse_json(read_bytes(path, CONFIG, root=root))
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: no such configuration file") from exc
        except JSONContentError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from exc
        if isinstance(raw, dict) and "format" not in raw:  # every pyro-vae version writes it
            raise ConfigError(
                f"{path}: no format field, so not a configuration pyro-vae wrote (format 1 and "
                "2 read differently); restore the file, or add the format it was written in"
            )
        try:
            return cls.from_dict(raw)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
