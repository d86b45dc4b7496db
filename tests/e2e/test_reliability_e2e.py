"""Nothing a user does by mistake, and no crash, loses work or runs someone else's code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import cli as _cli
from helpers import default_sigint, tiny, train_tiny

from pyro_vae import load_checkpoint
from pyro_vae.cli import main

# slow enough per epoch (~0.3 s) that a kill lands inside an epoch, and enough epochs that a
# busy machine's delay between seeing epoch 3 and sending the signal cannot outlast the run
SLOW_EPOCHS = 20


SLOW = [
    "--epochs",
    str(SLOW_EPOCHS),
    "--hidden",
    "256",
    "--latent-dim",
    "4",
    "--batch-size",
    "16",
    "--eval-particles",
    "2",
    "--quiet",
]


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _trajectory(run: Path) -> list[tuple[float, float]]:
    return [(m["train_objective"], m["val_elbo"]) for m in _metrics(run)]


def _wait_for_epochs(run: Path, epochs: int, proc: subprocess.Popen, timeout: float = 120):
    start = time.time()
    while time.time() - start < timeout:
        if (run / "metrics.jsonl").is_file() and len(_metrics(run)) >= epochs:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError("timed out waiting for epochs")


def _train_tiny(root: Path, name: str) -> Path:
    """A 2-epoch run of a tiny VAE on digits, through the command line; its directory."""
    return train_tiny(root, name, tiny(epochs=2))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("full")
    subprocess.run(
        _cli("train", *SLOW, "--runs-dir", str(root), "--name", "full"),
        check=True,
        capture_output=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return root / "full"


@pytest.mark.e2e
@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT", "SIGTERM"])
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path, uninterrupted, how):
    run = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        _cli("train", *SLOW, "--runs-dir", str(tmp_path), "--name", "killed"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # as in a terminal's foreground job: a shell without job control starts background
        # commands (pytest under `cmd &`) with SIGINT ignored, and children inherit that
        preexec_fn=default_sigint,
    )
    _wait_for_epochs(run, 3, proc)
    assert proc.poll() is None, "the run ended before the signal could be sent"
    proc.send_signal(getattr(signal, how))
    out, err = proc.communicate(timeout=60)
    done = len(_metrics(run))
    assert 3 <= done < SLOW_EPOCHS  # it really was stopped part of the way
    if how in ("SIGINT", "SIGTERM"):  # Ctrl-C, kill: a clean exit that says how to continue
        assert proc.returncode == 128 + getattr(signal, how), err
        assert "--resume" in err and "Traceback" not in err
    else:
        assert proc.returncode == -signal.SIGKILL
    state = load_checkpoint(run / "checkpoint.pt")  # intact whatever the moment of the kill
    assert state["epoch"] >= done - 1
    resumed = subprocess.run(
        _cli("train", "--resume", str(run), "--quiet"), capture_output=True, text=True, env=env
    )
    assert resumed.returncode == 0, resumed.stderr
    assert _trajectory(run) == _trajectory(uninterrupted)  # the same numbers, on CPU
    assert json.loads((run / "config.json").read_text()) == json.loads(
        (uninterrupted / "config.json").read_text()
    )


@pytest.mark.e2e
def test_run_resume_finishes_the_main_job(tmp_path, capsys):
    _train_tiny(tmp_path, "r")
    assert (
        main(
            [
                "run",
                "--resume",
                str(tmp_path / "r"),
                "--num-samples",
                "50",
                "--quiet",
                "--baseline-components",
                "1",
            ]
        )
        == 0
    )
    for name in ("evaluation.json", "baseline.json", "report.html"):
        assert (tmp_path / "r" / name).is_file()


@pytest.mark.e2e
def test_a_resume_that_trains_clears_what_described_the_old_model(tmp_path, capsys, monkeypatch):
    """Derived files go once the checkpoint they describe has been replaced, never before."""
    from pyro_vae.app import runs as runs_module

    saved = []  # (file saved, whether evaluation.json still existed just before)
    real_save = runs_module.save_checkpoint

    def recording_save(path, state):
        saved.append((Path(path).name, (tmp_path / "r" / "evaluation.json").is_file()))
        real_save(path, state)

    monkeypatch.setattr(runs_module, "save_checkpoint", recording_save)
    assert (
        main(
            [
                "run",
                "--epochs",
                "2",
                "--hidden",
                "16",
                "--latent-dim",
                "3",
                "--quiet",
                "--num-samples",
                "20",
                "--baseline-components",
                "1",
                "--runs-dir",
                str(tmp_path),
                "--name",
                "r",
            ]
        )
        == 0
    )
    run = tmp_path / "r"
    assert (run / "evaluation.json").is_file() and (run / "report.html").is_file()
    saved.clear()
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet"]) == 0
    assert saved[0] == ("checkpoint.pt", True)  # kept until the epoch-3 checkpoint existed
    for stale in ("evaluation.json", "baseline.json", "autoencoder.pt", "report.md", "figures"):
        assert not (run / stale).exists(), stale
    assert not (run / runs_module.STALE_MARKER).exists()
    assert main(["report", str(run)]) == 0  # a report of the trained-on model still works
    assert "trained for 3 epochs" in (run / "report.md").read_text()
