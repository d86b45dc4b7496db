"""Code chosen by a foreign configuration never runs unless the user vouches for it, and a
user's part can neither end pyro-vae with its own exit status nor keep it from stopping on
Ctrl-C or SIGTERM (issue 24)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import FIXTURES, REPO, default_sigint, tiny

from pyro_vae import load_checkpoint
from pyro_vae.app.interrupts import GRACE_SECONDS

TINY = tiny(eval_particles=2)


# ---------------------------------------------------------------------- signals
def _start(argv: list[str], run: Path, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(FIXTURES)]))
    env["HOSTILE_RUN"] = str(run)
    return subprocess.Popen(
        [sys.executable, "-m", "pyro_vae", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,  # stopped by SIGINT even when pytest runs in the background
    )


def _when_blocking(proc: subprocess.Popen, run: Path, limit: float = 120.0) -> None:
    marker = Path(str(run) + ".blocking")
    deadline = time.monotonic() + limit
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the part never started to misbehave"
        time.sleep(0.1)
    time.sleep(0.5)  # well inside the part


def _stop(proc: subprocess.Popen, *signals: signal.Signals) -> tuple[int, str, float]:
    start = time.monotonic()
    for i, sig in enumerate(signals):
        if i:
            time.sleep(0.5)
        proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=GRACE_SECONDS + 25)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("still running long after the signal")
    return proc.returncode, err, time.monotonic() - start


@pytest.mark.e2e
@pytest.mark.parametrize(
    "part,signals",
    [
        ("SleepsInEpoch", [signal.SIGINT]),
        ("WaitsInEpoch", [signal.SIGTERM]),
        ("SleepsInExecInEpoch", [signal.SIGTERM]),  # CPython 3.11 marks it unhandled: see
        ("SleepsInExecInEpoch", [signal.SIGINT]),  # pyro_vae.app.interrupts.Interrupted
        ("SwallowsInEpoch", [signal.SIGINT]),
        ("SwallowsInEpoch", [signal.SIGTERM, signal.SIGTERM]),
    ],
)
def test_a_part_that_hangs_in_an_epoch_still_stops_with_the_checkpoint_intact(
    tmp_path, part, signals
):
    run = tmp_path / "h"
    argv = ["train", *TINY, "--epochs", "50", "--runs-dir", str(tmp_path), "--name", "h"]
    proc = _start([*argv, "--prior", f"hostile_parts:{part}"], run, tmp_path)
    _when_blocking(proc, run)
    code, err, seconds = _stop(proc, *signals)
    assert code == 128 + signals[0], err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2, err  # trusting ...
    assert "interrupted during epoch 2;" in err and "holds the model after epoch 1" in err, err
    assert f"pyro-vae train --resume {run}" in err
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 1
    if part.startswith("Swallows"):
        assert "forced" in err
        assert seconds < (2.0 if len(signals) > 1 else GRACE_SECONDS) + 10
    else:
        assert "forced" not in err


@pytest.mark.e2e
@pytest.mark.parametrize("part", ["SleepsInInit", "SwallowsInInit"])
def test_a_constructor_that_never_returns_still_stops_on_sigterm(tmp_path, part):
    run = tmp_path / "i"
    argv = ["train", *TINY, "--runs-dir", str(tmp_path), "--name", "i"]
    proc = _start([*argv, "--prior", f"hostile_parts:{part}"], run, tmp_path)
    _when_blocking(proc, run)
    code, err, seconds = _stop(proc, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, err
    assert "interrupted" in err and "Traceback" not in err, err
    assert not run.exists()  # stopped while the configuration was checked
