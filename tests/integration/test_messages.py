"""The words a user reads are true: the epoch a checkpoint holds, the command that finishes the
job, why a data set is unavailable, a run that is already complete, a report that shows a run's
name as text."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import torch
from helpers import tiny

from pyro_vae import DatasetUnavailableError, load_checkpoint, load_dataset
from pyro_vae.app.interrupts import Interrupted
from pyro_vae.cli import main
from pyro_vae.infer import training
from pyro_vae.jobs import run as main_job

TINY = tiny(epochs=2)


def _interrupt_validation_at(monkeypatch, call: int) -> None:
    """Ctrl-C inside the ``call``-th validation pass (the first pass of epoch ``call``)."""
    real, calls = training.heldout_elbo, {"n": 0}

    def heldout(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "heldout_elbo", heldout)


def test_ctrl_c_in_the_validation_pass_names_the_epoch_the_checkpoint_holds(
    tmp_path, capsys, monkeypatch
):
    _interrupt_validation_at(monkeypatch, 3)
    args = [*TINY, "--epochs", "5", "--runs-dir", str(tmp_path), "--name", "r"]
    assert main(["train", *args]) == 130
    err = capsys.readouterr().err
    assert "interrupted during epoch 3;" in err and "holds the model after epoch 2." in err
    assert f"Continue with: pyro-vae train --resume {tmp_path / 'r'}" in err
    assert load_checkpoint(tmp_path / "r" / "checkpoint.pt")["epoch"] == 2


def test_ctrl_c_before_any_epoch_says_there_is_no_checkpoint(tmp_path, capsys, monkeypatch):
    _interrupt_validation_at(monkeypatch, 1)
    assert main(["train", *TINY, "--runs-dir", str(tmp_path), "--name", "r"]) == 130
    assert "no epoch had completed" in capsys.readouterr().err


def test_an_interrupted_run_suggests_the_command_that_finishes_the_whole_job(
    tmp_path, capsys, monkeypatch
):
    _interrupt_validation_at(monkeypatch, 2)
    extra = ["--num-samples", "50", "--baseline-components"]
    assert main(["run", *TINY, *extra, "--runs-dir", str(tmp_path), "--name", "r"]) == 130
    err = capsys.readouterr().err
    run = tmp_path / "r"
    assert "holds the model after epoch 1" in err
    assert (
        f"Continue with: pyro-vae run --resume {run} --num-samples 50 --baseline-components" in err
    )
    assert "train --resume" not in err


def test_an_interruption_after_training_says_what_is_missing(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(main_job, "evaluate", interrupted)
    assert main(["run", *TINY, "--runs-dir", str(tmp_path), "--name", "r"]) == 130
    err = capsys.readouterr().err
    assert "interrupted after training" in err and "holds the model after epoch 2" in err
    assert f"Finish with: pyro-vae run --resume {tmp_path / 'r'}" in err


@pytest.mark.parametrize("before", [signal.default_int_handler, signal.SIG_IGN])
def test_ctrl_c_raises_its_own_class_an_ignored_one_stays_ignored_and_both_are_restored(
    tmp_path, monkeypatch, before
):
    # a bare KeyboardInterrupt leaving exec'd code ends `python -m pyro_vae` by SIGINT whatever
    # the command returns (CPython 3.11); a shell's background job ignores SIGINT
    seen: list[object] = []

    def evaluate(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1.0)  # the handler runs here
        except KeyboardInterrupt as exc:
            seen.append(type(exc))
            raise
        seen.append("ignored")
        raise KeyboardInterrupt

    monkeypatch.setattr(main_job, "evaluate", evaluate)
    previous = signal.signal(signal.SIGINT, before)
    try:
        assert main(["run", *TINY, "--runs-dir", str(tmp_path), "--name", "r"]) == 130
        assert signal.getsignal(signal.SIGINT) is before
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen == (["ignored"] if before is signal.SIG_IGN else [Interrupted])


def test_no_download_and_a_missing_data_dir_are_named_for_what_they_are(tmp_path):
    with pytest.raises(DatasetUnavailableError) as info:
        load_dataset("mnist", data_dir=tmp_path, download=False)
    assert "--no-download forbids downloading it" in str(info.value)
    assert "could not be downloaded" not in str(info.value)
    with pytest.raises(DatasetUnavailableError, match="nowhere is missing: no such directory"):
        load_dataset("mnist", data_dir=tmp_path / "nowhere", download=True)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DatasetUnavailableError, match="afile is not a directory"):
        load_dataset("mnist", data_dir=tmp_path / "afile", download=False)


def test_resuming_a_finished_run_says_it_is_complete_and_changes_nothing(tmp_path, capsys):
    assert main(["train", *TINY, "--runs-dir", str(tmp_path), "--name", "r"]) == 0
    run = tmp_path / "r"
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0  # with its progress bar allowed
    out, err = capsys.readouterr()
    assert f"{run} is complete: it has trained 2 of 2 epochs; nothing to do" in out
    assert "training" not in err and "step" not in err  # no empty progress bar
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    assert after == {k: v for k, v in before.items() if k != ".lock"}


def test_the_markdown_report_shows_raw_html_of_a_run_name_as_text(tmp_path, capsys):
    name = "<img src=x onerror=alert(1)>"
    assert main(["train", *TINY, "--runs-dir", str(tmp_path), "--name", name]) == 0
    assert main(["report", str(tmp_path / name), "--no-figures"]) == 0
    md = (tmp_path / name / "report.md").read_text()
    page = (tmp_path / name / "report.html").read_text()
    assert "<img src=x" not in md and "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "<img src=x" not in page
    assert "`digits`" in md  # code spans are left as they are


def test_a_refused_device_leaves_no_run_directory(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is there: --device cuda is not refused")
    for command in ("train", "run"):
        args = [*TINY, "--device", "cuda", "--runs-dir", str(tmp_path), "--name", command]
        with pytest.raises(SystemExit) as info:
            main([command, *args])
        assert info.value.code == 2 and "CUDA is not available" in capsys.readouterr().err
        assert not Path(tmp_path / command).exists()
