"""The spine of a command: its configuration is resolved once and its VAE built at most twice
(once on the ``meta`` device, once for real), whatever the command: ``train``, ``run``,
``evaluate``, a resume, ``figures`` and ``report``; the jobs take the resolved, frozen
configuration as it is."""

import dataclasses

import pytest
from helpers import tiny

from pyro_vae.app import vae_build
from pyro_vae.app.config import ResolvedConfig, RunConfig
from pyro_vae.app.vae_build import resolve
from pyro_vae.cli import main
from pyro_vae.model.vae import VAE


@pytest.fixture
def builds(monkeypatch):
    """Every VAE built while the test runs, by device (``meta`` or the real one)."""
    built: list[str] = []
    init = VAE.__init__

    def counted(self, *args, **kwargs):
        init(self, *args, **kwargs)
        built.append(next(self.parameters()).device.type)

    monkeypatch.setattr(VAE, "__init__", counted)
    return built


def test_each_command_builds_the_vae_once_on_meta_and_once_for_real(tmp_path, builds):
    runs = str(tmp_path)
    commands = {
        "train": ["train", *tiny(), "--runs-dir", runs, "--name", "t"],
        "resume": ["train", "--resume", str(tmp_path / "t"), "--epochs", "2", "--quiet"],
        "run": ["run", *tiny(), "--runs-dir", runs, "--name", "r", "--num-samples", "4"]
        + ["--baseline-components", "1"],
        "evaluate": ["evaluate", str(tmp_path / "t"), "--num-samples", "4", "--quiet"],
        "report": ["report", str(tmp_path / "t"), "--quiet"],
    }
    counts = {}
    for what, argv in commands.items():
        builds.clear()
        assert main(argv) == 0, what
        counts[what] = sorted(builds)
    assert counts == {what: ["cpu", "meta"] for what in commands}


def test_a_resolved_configuration_is_frozen_and_copies_thaw():
    cfg = RunConfig()
    resolved = resolve(cfg)
    assert isinstance(resolved, ResolvedConfig) and resolved.train.epochs == 500
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolved.train.epochs = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolved.model = cfg.model
    again = resolved.copy()
    assert type(again) is RunConfig and again == resolved and resolved == again
    again.train.epochs = 3  # a copy is the user's to change
    assert resolved.train.epochs == 500 and again != resolved


def test_resolving_builds_on_meta_and_checks_the_contract_on_a_real_model(builds):
    resolved, meta = vae_build.resolve_config(RunConfig())
    assert builds == ["meta"] and next(meta.parameters()).device.type == "meta"
    resolve(RunConfig())
    assert builds == ["meta", "meta", "cpu"]
    assert isinstance(resolved, ResolvedConfig)
