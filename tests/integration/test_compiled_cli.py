"""``pyro-vae train --elbo compiled``: a tiny digits run through torch.compile trains as the
eager objective does, silently; without a C++ compiler it trains eagerly after a one-line
notice. Compiling takes 10 to 60 s on a shared machine: one compiled run here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import cli, tiny

from pyro_vae.cli import main

# digits' 1197 training images in 7 batches of 171: one batch shape, one graph
TINY = [*tiny(epochs=1, hidden=32, latent_dim=4, eval_particles=2), "--batch-size", "171"]


def _train_objective(run_dir) -> float:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1])["train_objective"]


def test_a_compiled_run_trains_as_the_eager_one(tmp_path, capfd):
    """Same seed, same noise (the compiled graph draws PyTorch's random numbers), so the same
    parameters step by step: the epoch's training objective agrees to float tolerance, and
    nothing but the run directory's line reaches stderr (warnings are errors here)."""
    root = str(tmp_path)
    assert main(["train", *TINY, "--elbo", "compiled", "--runs-dir", root, "--name", "c"]) == 0
    err = capfd.readouterr().err
    assert "torch.compile" not in err and "Warning" not in err, err
    assert main(["train", *TINY, "--no-jit", "--runs-dir", root, "--name", "e"]) == 0
    compiled, eager = _train_objective(tmp_path / "c"), _train_objective(tmp_path / "e")
    assert compiled == pytest.approx(eager, rel=1e-5)


def test_without_a_cxx_compiler_training_falls_back_with_one_line(tmp_path):
    """No C++ compiler on PATH and an empty Inductor cache (nothing compiled earlier reused):
    exit status 0, one notice line on stderr, no traceback, no warning."""
    python_only = tmp_path / "bin"
    python_only.mkdir()
    (python_only / "python").symlink_to(sys.executable)
    env = {k: v for k, v in os.environ.items() if k not in ("CXX", "CC")}
    env.update(PATH=str(python_only), TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "inductor"))
    command = cli("train", *TINY, "--elbo", "compiled", "--runs-dir", str(tmp_path))
    done = subprocess.run(
        [command[0], "-W", "error", *command[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    notices = [line for line in done.stderr.splitlines() if "torch.compile" in line]
    assert len(notices) == 1 and "unavailable" in notices[0] and "eager" in notices[0]
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr, done.stderr
