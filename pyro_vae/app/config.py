"""Run configuration: plain dataclasses that round-trip through JSON (never pickle).

The sections and their settings are declared in :mod:`pyro_vae.config` (re-exported here);
this module holds the whole :class:`RunConfig` and its file format.

A run directory's ``config.json`` holds one :class:`RunConfig`; together with the checkpoint it
is all that is needed to rebuild the trained model. The model's parts are recorded as a name
(a built-in short name, an entry-point name, or an import path ``module:Class``) and the
keyword arguments the user gave; :mod:`pyro_vae.app.vae_build` turns them into parts. Nothing
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
from ..config import DEFAULT_EPOCHS, DataConfig, DistributedConfig, ModelConfig, TrainConfig
from ..config.frozen import freeze
from ..errors import ConfigError
from ..store.strict_json import JSONContentError, parse_json
from .checkpoint import atomic_write_text
from .run_files import CONFIG, read_bytes

CONFIG_FORMAT = 2

__all__ = [
    "CONFIG_FORMAT",
    "DEFAULT_EPOCHS",
    "DataConfig",
    "DistributedConfig",
    "ModelConfig",
    "ResolvedConfig",
    "RunConfig",
    "TrainConfig",
]


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


AS_IS = "as-is"
"""``encoder_input`` where a configuration records none (a run written before the setting, or
one whose guide sees x as it is: the field is then left out, so such a configuration reads as
it always did); ``null`` (None) is a new run's "the likelihood's default", resolved once."""

FILE_FIELDS = (
    "label_column",
    "data_kind",
    "test_file",
    "split_seed",
    "data_sha256",
    "test_sha256",
    "data_shape",
)
"""The data section's fields that only a data file of the user's sets (``--dataset PATH``)."""

SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "distributed": DistributedConfig,
}
"""The sections of a configuration, by their key in ``config.json``."""


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
        """The configuration as JSON values; the data file's settings and records
        (:data:`FILE_FIELDS`) only for a data file (a recorded SHA-256), so that a named data
        set's configuration reads as it always did."""
        found = {"format": CONFIG_FORMAT, **dataclasses.asdict(self)}
        if found["model"]["encoder_input"] == AS_IS:  # as a run before the setting reads
            del found["model"]["encoder_input"]
        if self.data.data_sha256 is None:
            defaults = DataConfig()
            for name in FILE_FIELDS:
                if found["data"][name] == getattr(defaults, name):
                    del found["data"][name]
        return found

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
        sections = SECTIONS
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
            if name == "model":  # recorded since: a run without it saw x as it is
                values = {"encoder_input": AS_IS, **values}
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


class ResolvedConfig(RunConfig):
    """A configuration resolved once (:func:`~.vae_build.resolve_config`): valid, the defaults
    that depend on other options filled in (epochs, pixels, JIT), its parts found and built on
    the ``meta`` device. Frozen, sections included: the jobs and the trainer take it as it is and
    never check it again; to change a setting, change a copy (:meth:`copy`, a plain
    :class:`RunConfig`) and resolve that."""

    def __init__(self, cfg: RunConfig) -> None:  # only resolve_config makes one
        for name in SECTIONS:
            object.__setattr__(self, name, freeze(getattr(cfg, name)))

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(
            f"cannot assign to {name!r}: a resolved configuration is frozen (change a copy: "
            "cfg.copy())"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RunConfig):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in SECTIONS)

    __hash__ = None  # type: ignore[assignment]

    def with_distributed(self, distributed: DistributedConfig) -> ResolvedConfig:
        """The same configuration recording how many processes trained it (set by the
        training job, which alone knows)."""
        cfg = self.copy()
        cfg.distributed = distributed
        return ResolvedConfig(cfg)
