"""``--preset``: a named set of options that explicit options override."""

from __future__ import annotations

import pytest

from pyro_vae.app.options import PRESETS, config_from_args, parse_with_preset
from pyro_vae.cli import build_parser, main


def _config(*argv: str):
    args, unknown = parse_with_preset(build_parser(), ["train", *argv])
    assert not unknown
    return config_from_args(args)


def test_the_quality_preset_sets_its_options():
    cfg = _config("--preset", "quality")
    assert cfg.model.prior == "vamp" and cfg.data.pixels == "grey"
    assert cfg.model.activation == "gated"
    assert (cfg.train.elbo, cfg.train.particles) == ("iwae", 5)
    assert (cfg.train.lr, cfg.train.lr_schedule) == (3e-3, "cosine")
    assert cfg.model.latent_dim == 20  # what the preset leaves alone keeps its default


def test_options_given_explicitly_override_the_preset():
    cfg = _config("--preset", "quality", "--particles", "10", "--prior", "mog", "--lr", "0.01")
    assert (cfg.train.particles, cfg.model.prior, cfg.train.lr) == (10, "mog", 0.01)
    assert cfg.train.elbo == "iwae"


def test_without_a_preset_the_defaults_hold():
    cfg = _config()
    assert cfg.model.prior == "mog" and cfg.train.elbo == "trace" and cfg.train.lr == 3e-3


def test_every_preset_names_real_options_with_valid_values():
    from pyro_vae import resolve

    for name in PRESETS:
        cfg = _config("--preset", name, "--dataset", "digits")
        resolve(cfg)  # validated, parts built on the meta device


def test_an_unknown_preset_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--preset", "qualty"])
    assert exc.value.code == 2 and "did you mean 'quality'" in capsys.readouterr().err


def test_a_script_reusing_the_parent_parser_gets_the_preset_too():
    import argparse

    from pyro_vae.app.options import training_parser

    parser = argparse.ArgumentParser(parents=[training_parser()])
    args, unknown = parse_with_preset(parser, ["--preset", "quality", "--particles", "2"])
    cfg = config_from_args(args)
    assert not unknown and cfg.model.prior == "vamp" and cfg.train.particles == 2


def test_the_recipes_gated_row_is_the_quality_preset():
    """``experiments/recipes.py`` measures the preset as its row "quality, gated": the row's
    settings are the preset's, so the README's number for the preset is the preset's."""
    from helpers import experiment_module

    from pyro_vae.config import preset_sections

    recipes = experiment_module("recipes")

    (row,) = [r for r in recipes.ROWS if r.name == "quality, gated"]
    preset = preset_sections("quality")
    assert (row.model, row.data, row.train) == (preset["model"], preset["data"], preset["train"])
    (parent,) = [r for r in recipes.ROWS if r.name == row.parent]
    differs = {k for k in preset["model"] if parent.model.get(k) != preset["model"][k]}
    assert differs == {"activation"} and parent.train == row.train and parent.data == row.data
