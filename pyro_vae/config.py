"""Run configuration: plain dataclasses that round-trip through JSON (never pickle).

A run directory's ``config.json`` holds one :class:`RunConfig`; together with the checkpoint it
is all that is needed to rebuild the trained model.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

CONFIG_FORMAT = 1

DEFAULT_EPOCHS = {"digits": 500, "mnist": 50, "fashion-mnist": 50}
"""Epochs when ``--epochs`` is not given: the default ``digits`` run takes about a minute on two
CPU cores."""


@dataclass
class DataConfig:
    dataset: str = "digits"
    data_dir: str | None = None
    pixels: str = "dynamic"
    download: bool = True


@dataclass
class ModelConfig:
    latent_dim: int = 20
    hidden: list[int] = field(default_factory=lambda: [400])
    activation: str = "relu"
    prior: str = "normal"
    guide: str = "diagonal"
    likelihood: str = "bernoulli"


@dataclass
class TrainConfig:
    epochs: int | None = None
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    elbo: str = "trace"
    particles: int = 1
    jit: bool = False
    eval_particles: int = 10


@dataclass
class RunConfig:
    """Everything that defines a run: data, model and training options."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    # ------------------------------------------------------------------ validation
    def resolved(self) -> RunConfig:
        """A validated copy with defaults that depend on other options filled in."""
        cfg = dataclasses.replace(
            self,
            data=dataclasses.replace(self.data),
            model=dataclasses.replace(self.model, hidden=list(self.model.hidden)),
            train=dataclasses.replace(self.train),
        )
        if cfg.train.epochs is None:
            cfg.train.epochs = DEFAULT_EPOCHS.get(cfg.data.dataset, 50)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming every invalid option."""
        from .datasets import DATASETS
        from .guides import GUIDES
        from .likelihoods import LIKELIHOODS
        from .nets import ACTIVATIONS
        from .pixels import BINARY_SCHEMES, PIXEL_SCHEMES
        from .priors import PRIORS
        from .training import ELBOS

        problems: list[str] = []

        def choice(name: str, value: Any, options) -> None:
            if value not in options:
                problems.append(f"{name} {value!r} is not one of: {', '.join(sorted(options))}")

        def positive(name: str, value: Any) -> None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")

        choice("dataset", self.data.dataset, DATASETS)
        choice("pixels", self.data.pixels, PIXEL_SCHEMES)
        choice("prior", self.model.prior, PRIORS)
        choice("guide", self.model.guide, GUIDES)
        choice("likelihood", self.model.likelihood, LIKELIHOODS)
        choice("activation", self.model.activation, ACTIVATIONS)
        choice("elbo", self.train.elbo, ELBOS)
        positive("latent-dim", self.model.latent_dim)
        if not isinstance(self.model.hidden, list):
            problems.append(f"hidden must be a list of layer widths, got {self.model.hidden!r}")
        else:
            for width in self.model.hidden:
                positive("each hidden width", width)
        if self.train.epochs is not None:
            positive("epochs", self.train.epochs)
        positive("batch-size", self.train.batch_size)
        positive("particles", self.train.particles)
        positive("eval-particles", self.train.eval_particles)
        if not isinstance(self.train.seed, int) or isinstance(self.train.seed, bool):
            problems.append(f"seed must be an integer, got {self.train.seed!r}")
        lr = self.train.lr
        if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            problems.append(f"lr must be a positive number, got {lr!r}")
        device = self.train.device
        if not (device in ("auto", "cpu", "cuda") or str(device).startswith("cuda:")):
            problems.append(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
        likelihood = LIKELIHOODS.get(self.model.likelihood)
        if likelihood is not None and self.data.pixels in PIXEL_SCHEMES:
            kind = likelihood.data_kind
            if kind == "binary" and self.data.pixels not in BINARY_SCHEMES + ("grey",):
                problems.append(
                    f"the {self.model.likelihood} likelihood needs binary pixels "
                    f"(--pixels dynamic or static; grey to score grey levels with the "
                    f"Bernoulli formula), not {self.data.pixels!r}"
                )
        if problems:
            raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return {"format": CONFIG_FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        if not isinstance(raw, dict):
            raise ConfigError("a configuration must be a JSON object")
        raw = dict(raw)
        fmt = raw.pop("format", CONFIG_FORMAT)
        if fmt != CONFIG_FORMAT:
            raise ConfigError(f"configuration format {fmt!r} is not supported")
        sections = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
        unknown = set(raw) - set(sections)
        if unknown:
            raise ConfigError(f"unknown configuration sections: {', '.join(sorted(unknown))}")
        built = {}
        for name, section_cls in sections.items():
            values = raw.get(name, {})
            if not isinstance(values, dict):
                raise ConfigError(f"configuration section {name!r} must be a JSON object")
            known = {f.name for f in dataclasses.fields(section_cls)}
            bad = set(values) - known
            if bad:
                raise ConfigError(f"unknown options in {name!r}: {', '.join(sorted(bad))}")
            built[name] = section_cls(**values)
        return cls(**built)

    def save(self, path: str | os.PathLike) -> None:
        from .checkpoint import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> RunConfig:
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: no such configuration file") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
        return cls.from_dict(raw)
