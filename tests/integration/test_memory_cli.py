"""Sizes that cannot fit in memory are refused before anything is allocated, with the estimate
and the limit in one message, and no run directory left behind."""

from __future__ import annotations

import json

import pytest

from pyro_vae.cli import main
from pyro_vae.infer import memory

GB = 10**9


def test_a_crafted_config_too_large_to_load_is_refused(tmp_path, capsys, monkeypatch):
    root = tmp_path / "runs"
    args = ["--epochs", "1", "--hidden", "8", "--latent-dim", "2", "--quiet"]
    assert main(["train", *args, "--runs-dir", str(root), "--name", "r"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(memory, "available_memory", lambda device: (GB, "MemAvailable"))
    cfg = json.loads((root / "r" / "config.json").read_text())
    cfg["model"]["hidden"] = [100_000, 100_000]
    (root / "r" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(SystemExit) as info:
        main(["train", "--resume", str(root / "r"), "--epochs", "2", "--quiet"])
    assert info.value.code == 2
    assert "would need about" in capsys.readouterr().err
