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
    pixels: str | None = None  # default: "dynamic" for binary likelihoods, else "dequantized"
    download: bool = True


@dataclass
class ModelConfig:
    latent_dim: int = 20
    hidden: list[int] = field(default_factory=lambda: [400])
    activation: str = "relu"
    prior: str = "normal"
    guide: str = "diagonal"
    likelihood: str = "bernoulli"
    components: int = 10  # mixture-of-Gaussians prior
    pseudo_inputs: int = 100  # VampPrior
    flows: int = 2  # flow guide
    flow_type: str = "iaf"
    sigma: float = 0.1  # fixed-scale Gaussian likelihood
    min_sigma: float = 1e-3  # learned-scale Gaussian likelihood


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
    beta: float = 1.0  # weight of the KL term
    kl_warmup: int = 0  # epochs over which the KL weight rises linearly to beta


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
        if cfg.data.pixels is None:
            from .likelihoods import LIKELIHOODS

            kind = getattr(LIKELIHOODS.get(cfg.model.likelihood), "data_kind", "binary")
            cfg.data.pixels = "dynamic" if kind == "binary" else "dequantized"
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming every invalid option."""
        from .datasets import DATASETS
        from .guides import FLOW_TYPES, GUIDES
        from .likelihoods import LIKELIHOODS
        from .nets import ACTIVATIONS
        from .objectives import ELBOS, SUPPORTS_JIT, SUPPORTS_KL_WEIGHT
        from .pixels import BINARY_SCHEMES, PIXEL_SCHEMES
        from .priors import PRIORS

        problems: list[str] = []

        def choice(name: str, value: Any, options) -> None:
            if value not in options:
                problems.append(f"{name} {value!r} is not one of: {', '.join(sorted(options))}")

        def positive(name: str, value: Any) -> None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")

        def positive_number(name: str, value: Any) -> None:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or value <= 0:
                problems.append(f"{name} must be a positive number, got {value!r}")

        choice("dataset", self.data.dataset, DATASETS)
        if self.data.pixels is not None:
            choice("pixels", self.data.pixels, PIXEL_SCHEMES)
        choice("prior", self.model.prior, PRIORS)
        choice("guide", self.model.guide, GUIDES)
        choice("likelihood", self.model.likelihood, LIKELIHOODS)
        choice("activation", self.model.activation, ACTIVATIONS)
        choice("elbo", self.train.elbo, ELBOS)
        choice("flow-type", self.model.flow_type, FLOW_TYPES)
        positive("latent-dim", self.model.latent_dim)
        positive("components", self.model.components)
        positive("pseudo-inputs", self.model.pseudo_inputs)
        positive("flows", self.model.flows)
        positive_number("sigma", self.model.sigma)
        positive_number("min-sigma", self.model.min_sigma)
        positive_number("beta", self.train.beta)
        warmup = self.train.kl_warmup
        if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
            problems.append(f"kl-warmup must be a whole number of epochs >= 0, got {warmup!r}")
        elbo = self.train.elbo
        if elbo in ELBOS and elbo not in SUPPORTS_KL_WEIGHT:
            if self.train.beta != 1 or self.train.kl_warmup:
                problems.append(f"--beta and --kl-warmup apply to the ELBO, not --elbo {elbo}")
        if elbo in ELBOS and elbo not in SUPPORTS_JIT and self.train.jit:
            problems.append(f"--jit is not available for --elbo {elbo}")
        if elbo == "iwae" and self.train.particles < 2:
            problems.append("--elbo iwae needs --particles K >= 2 (with K = 1 it is the ELBO)")
        if (
            self.model.prior == "vamp"
            and self.model.guide == "flow"
            and self.model.flow_type == "planar"
        ):
            problems.append(
                "--prior vamp evaluates q(z|u) at any z; planar flows are not invertible "
                "(use --flow-type iaf)"
            )
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
            if kind == "continuous" and self.data.pixels != "dequantized":
                problems.append(
                    f"the {self.model.likelihood} likelihood is a density: it needs "
                    f"--pixels dequantized, not {self.data.pixels!r} (a density of discrete "
                    "values grows without bound)"
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
