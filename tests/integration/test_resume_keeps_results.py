"""A resume never deletes results (issue 30, item 1): the evaluations, figures and report of
the replaced checkpoint move to ``RUN/previous/epoch-<N>/``, byte for byte, and the command says
where."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import tiny, train_tiny

from pyro_vae.app.runs import PREVIOUS, STALE_MARKER, RunDirectory
from pyro_vae.cli import main


def _trained_and_evaluated(tmp_path: Path) -> Path:
    run = train_tiny(tmp_path, "r", tiny(epochs=1, latent_dim=2))
    assert main(["evaluate", str(run), "--num-samples", "3", "--quiet"]) == 0
    assert main(["figures", str(run), "--quiet"]) == 0
    return run


def test_resume_moves_the_old_results_and_says_where(tmp_path, capsys):
    run = _trained_and_evaluated(tmp_path)
    before = {p.name: p.read_bytes() for p in run.glob("evaluation*")}
    figures = sorted(p.name for p in (run / "figures").iterdir())
    assert before and figures
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet"]) == 0
    err = capsys.readouterr().err
    kept = run / PREVIOUS / "epoch-1"
    assert f"of epoch 1 no longer describe the model: kept in {kept}" in err
    assert err.count("no longer describe") == 1  # once: epochs 2 and 3 had nothing to move
    assert {p.name: p.read_bytes() for p in kept.glob("evaluation*")} == before
    assert sorted(p.name for p in (kept / "figures").iterdir()) == figures
    assert not list(run.glob("evaluation*")) and not (run / "figures").exists()
    assert not os.path.lexists(run / STALE_MARKER)
    # and an evaluation of the resumed model is current again, the old one still kept
    assert main(["evaluate", str(run), "--num-samples", "3", "--quiet"]) == 0
    assert (run / "evaluation.json").is_file() and (kept / "evaluation.json").is_file()


def test_a_second_archive_of_the_same_epoch_gets_its_own_directory(tmp_path):
    run = RunDirectory(tmp_path)
    (tmp_path / PREVIOUS / "epoch-4").mkdir(parents=True)
    assert run._archive_for(4) == tmp_path / PREVIOUS / "epoch-4-2"
    assert run._archive_for(None) == tmp_path / PREVIOUS / "epoch-unknown"


def test_a_link_at_previous_is_refused_before_the_checkpoint_is_replaced(tmp_path, capsys):
    run = _trained_and_evaluated(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (run / PREVIOUS).symlink_to(outside)
    checkpoint = (run / "checkpoint.pt").read_bytes()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 1
    assert "Traceback" not in capsys.readouterr().err
    assert (run / "checkpoint.pt").read_bytes() == checkpoint  # nothing replaced
    assert (run / "evaluation.json").is_file() and not list(outside.iterdir())
