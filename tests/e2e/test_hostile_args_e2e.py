"""Issue 24, the command line's share: every hostile argument or environment value gives one line
with the documented exit status (2 for usage, 1 for files, data and memory), writes nothing, and
the cheap checks come before torch is imported."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import file_stamps as _snapshot
from helpers import tiny, train_tiny

from pyro_vae.cli import main

TINY = tiny(hidden=8, latent_dim=2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two evaluated runs, ``runs/a`` and ``runs/b`` (a copy), on the same test images."""
    root = tmp_path_factory.mktemp("hostile-args") / "runs"
    train_tiny(root, "a", TINY)
    assert main(["evaluate", str(root / "a"), "--num-samples", "2", "--quiet"]) == 0
    shutil.copytree(root / "a", root / "b")
    return root


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit")
def test_a_data_limit_gives_a_message(runs, tmp_path):
    """``prlimit --data`` below what AIS needs: refused by the estimate (which reads the
    process's limit) or, past it, by the allocator; one line either way."""
    run = tmp_path / "a"
    shutil.copytree(runs / "a", run)
    before = _snapshot(run)
    argv = ["evaluate", str(run), "--quiet", "--method", "ais", "--chains", "200000"]
    cmd = ["prlimit", f"--data={1_500_000_000}", sys.executable, "-m", "pyro_vae", *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (1, 2), proc.stderr
    assert "Traceback" not in proc.stderr and "memory" in proc.stderr.splitlines()[-1]
    assert _snapshot(run) == before
