"""What a model is, in words and numbers: its parts' names, classes, options and parameter
counts (:func:`describe_parts`, stored in a run's evaluation) and the one-line summary shown in
the console and the report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from ..model.parts import uses_guide
from ..model.vae import VAE
from .config import ModelConfig
from .part_import import BUILTINS, import_path, is_import_path


def count_parameters(module: object) -> int:
    if not isinstance(module, nn.Module):
        return 0
    return sum(p.numel() for p in module.parameters())


def describe_parts(vae: VAE, cfg: ModelConfig) -> dict[str, Any]:
    """What the model is, from its parts: for each, the name it was given, its class and import
    path, the user's keyword arguments and its parameter count; then the shared sizes."""
    objects = {
        "prior": vae.prior,
        "guide": vae.encoder,
        "likelihood": vae.likelihood,
        "decoder": vae.decoder,
    }
    parts = {}
    for kind, part in objects.items():
        name, kwargs = cfg.part(kind)
        parts[kind] = {
            "name": name,
            "class": type(part).__qualname__,
            "import_path": import_path(type(part)),
            "kwargs": dict(kwargs),
            "parameters": count_parameters(part),
        }
    return {
        "parts": parts,
        "latent_dim": cfg.latent_dim,
        "hidden": list(cfg.hidden),
        "activation": cfg.activation,
        "parameters": count_parameters(vae),
        "generative_parameters": generative_parameters(vae),
    }


def kwargs_text(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def part_label(entry: Mapping[str, Any]) -> str:
    """``mog (components=3)`` or ``StudentTPrior (mypkg.priors, df=5.0)``."""
    name, cls = str(entry["name"]), str(entry["class"])
    options = kwargs_text(entry.get("kwargs") or {}).replace("'", "")
    if is_import_path(name) or name not in _all_builtin_names():
        label = cls
        options = ", ".join(filter(None, [name.split(":")[0], options]))
    else:
        label = name
    return f"{label} ({options})" if options else label


def _all_builtin_names() -> set[str]:
    return {n for table in BUILTINS.values() for n in table}


def model_summary(description: Mapping[str, Any]) -> str:
    """One line: ``VAE (normal prior, diagonal guide, bernoulli likelihood, latent 20, hidden
    [400])`` from :func:`describe_parts`."""
    parts = description["parts"]
    words = [
        f"{part_label(parts['prior'])} prior",
        f"{part_label(parts['guide'])} guide",
        f"{part_label(parts['likelihood'])} likelihood",
    ]
    if parts["decoder"]["name"] != "mlp" or parts["decoder"]["kwargs"]:
        words.append(f"{part_label(parts['decoder'])} decoder")
    words += [f"latent {description['latent_dim']}", f"hidden {description['hidden']}"]
    return "VAE (" + ", ".join(words) + ")"


def generative_parameters(vae: VAE) -> int:
    """Parameters of p(x) itself: decoder, prior and likelihood, not the encoder, which only
    serves inference, except where the prior is built from it (the VampPrior's p(z) is the
    encoder's posteriors at pseudo-inputs)."""
    parts = [vae.decoder, vae.prior, vae.likelihood]
    if uses_guide(vae.prior):
        parts.append(vae.encoder)
    seen = {id(p): p for part in parts if isinstance(part, nn.Module) for p in part.parameters()}
    return sum(p.numel() for p in seen.values())
