"""Writing a run directory is safe: no write outside it through a planted link, no derived file
lost while it still describes the checkpoint, no run directory shared by two processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import cli as _cli
from helpers import tiny, train_tiny

from pyro_vae import RunDirectory, load_checkpoint
from pyro_vae.app import runs as runs_module
from pyro_vae.cli import main
from pyro_vae.errors import RunInUseError

TINY = tiny(epochs=2)


IN_USE = "is in use: another pyro-vae process is writing it"


def _train_tiny(root: Path, name: str = "r", *extra: str) -> Path:
    return train_tiny(root, name, TINY, *extra)


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return _train_tiny(tmp_path / "runs")


@pytest.mark.e2e
def test_a_lock_left_by_a_killed_process_does_not_block(run_dir):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(run_dir / '.lock')!r}, os.O_RDONLY | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunInUseError):
            with RunDirectory.open(run_dir).writing():
                pass
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    with RunDirectory.open(run_dir).writing():  # the lock died with its process
        pass


# A figure writer whose every savefig lingers, so that two of them overlap inside the window
# between writing a figure and moving it into place (where a shared temporary name collided).
LINGERING_FIGURES = """
import sys, time
import matplotlib
matplotlib.use("Agg")
from matplotlib.figure import Figure
real = Figure.savefig
def lingering(self, *args, **kwargs):
    real(self, *args, **kwargs)
    time.sleep(2.0)
Figure.savefig = lingering
from pyro_vae.cli import main
sys.exit(main(["figures", sys.argv[1]]))
"""


@pytest.mark.e2e
def test_two_concurrent_figures_commands_never_traceback(run_dir):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", LINGERING_FIGURES, str(run_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    results = [(p.communicate(timeout=300)[1], p.returncode) for p in procs]
    results = [(code, err) for err, code in results]
    for code, err in results:
        assert "Traceback" not in err, err
        assert code == 0 or (code == 1 and IN_USE in err), (code, err)
    assert sorted(code for code, _ in results) == [0, 1]  # they overlapped: one was refused
    names = sorted(p.name for p in (run_dir / "figures").iterdir())
    assert "samples.png" in names and not [n for n in names if n.startswith(".")]


@pytest.mark.e2e
def test_sigterm_during_a_resumed_epoch_keeps_what_describes_the_kept_checkpoint(tmp_path):
    # one slow epoch (batch 2: about a thousand steps), then every derived file of `run`
    root = tmp_path / "runs"
    args = ["--epochs", "1", "--hidden", "16", "--latent-dim", "3", "--batch-size", "2"]
    job = ["--quiet", "--num-samples", "20", "--baseline-components", "2"]
    assert main(["run", *args, *job, "--runs-dir", str(root), "--name", "r"]) == 0
    run = root / "r"
    derived = [
        "evaluation.json",
        "evaluation_is-K20_points.pt",
        "baseline.json",
        "baseline_mixtures.pt",
        "autoencoder.pt",
        "interpolation.json",
        "report.md",
        "report.html",
        *(f"figures/{p.name}" for p in (run / "figures").iterdir()),
    ]
    before = {name: (run / name).read_bytes() for name in derived}
    metrics_inode = (run / "metrics.jsonl").stat().st_ino
    proc = subprocess.Popen(
        _cli("train", "--resume", str(run), "--epochs", "50", "--quiet"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    # the resume rewrites metrics.jsonl just before epoch 2 starts (where the old code had
    # already deleted the derived files); stop it part of the way into that epoch
    start = time.time()
    while (run / "metrics.jsonl").stat().st_ino == metrics_inode:
        assert proc.poll() is None, proc.communicate()
        assert time.time() - start < 300, "the resume never started"
        time.sleep(0.02)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "--resume" in err and "Traceback" not in err
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 1, "stopped after epoch 2 ended"
    for name, data in before.items():
        assert (run / name).read_bytes() == data, name
    assert not (run / runs_module.STALE_MARKER).exists()
