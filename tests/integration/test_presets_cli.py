"""``--preset``: a named set of options that explicit options override."""

from __future__ import annotations

import json

import pytest

from pyro_vae.cli import main


def test_a_preset_with_resume_is_refused(tmp_path, capsys):
    args = ["--hidden", "8", "--latent-dim", "2", "--quiet", "--runs-dir", str(tmp_path)]
    assert main(["train", "--epochs", "1", "--name", "r", *args]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["train", "--resume", str(tmp_path / "r"), "--preset", "quality"])
    assert exc.value.code == 2 and "drop --preset" in capsys.readouterr().err
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["model"]["prior"] == "mog"  # the run was left as it was
