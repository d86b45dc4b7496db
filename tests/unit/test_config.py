import json

import pytest

from pyro_vae import ConfigError, RunConfig, resolve
from pyro_vae.app.config import DEFAULT_EPOCHS


def test_json_round_trip(tmp_path):
    cfg = RunConfig()
    cfg.model.hidden = [256, 128]
    cfg.train.lr = 3e-4
    cfg.save(tmp_path / "config.json")
    back = RunConfig.load(tmp_path / "config.json")
    assert back == cfg
    assert json.loads((tmp_path / "config.json").read_text())["format"] == 2


def test_resolution_fills_dataset_dependent_defaults():
    cfg = RunConfig()
    assert cfg.train.epochs is None
    resolved = resolve(cfg)
    assert resolved.train.epochs == DEFAULT_EPOCHS["digits"]
    assert cfg.train.epochs is None  # the original is untouched


@pytest.mark.parametrize(
    "section,key,value,message",
    [
        ("model", "latent_dim", 0, "latent-dim must be a positive integer"),
        ("model", "hidden", [400, -3], "each hidden width"),
        ("model", "prior", "cauchy", "prior 'cauchy' is not one of"),
        ("train", "lr", -1.0, "lr must be a positive number"),
        ("train", "lr", float("nan"), "lr must be a positive number"),
        ("train", "batch_size", 0, "batch-size must be a positive integer"),
        ("train", "device", "tpu", "device must be"),
        ("data", "dataset", "cifar", "dataset 'cifar' is not one of"),
        ("data", "pixels", "dequantized", "needs binary pixels"),
    ],
)
def test_invalid_options_are_named(section, key, value, message):
    cfg = RunConfig()
    setattr(getattr(cfg, section), key, value)
    with pytest.raises(ConfigError, match=message):
        resolve(cfg)


def test_unknown_keys_and_bad_json_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown options in 'model': latnet_dim"):
        RunConfig.from_dict({"model": {"latnet_dim": 3}})
    with pytest.raises(ConfigError, match="unknown configuration sections"):
        RunConfig.from_dict({"optimizer": {}})
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        RunConfig.load(tmp_path / "c.json")
    with pytest.raises(ConfigError, match="no such configuration file"):
        RunConfig.load(tmp_path / "missing.json")
