"""The convolutional parts under ``torchrun``: two processes train a run with
``--encoder conv --decoder conv`` and the sharded evaluation equals one process's, image by
image."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from helpers import tiny

from pyro_vae.app.evaluations import load_points
from pyro_vae.app.runs import RunDirectory
from pyro_vae.cli import main
from pyro_vae.infer import distributed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*args: str) -> list[str]:
    port = str(_free_port())
    head = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    return [*head, "--master_port", port, "-m", "pyro_vae", *args]


def _run(cmd: list[str]) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", distributed.TIMEOUT_ENV: "60"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.e2e
def test_torchrun_trains_and_shards_the_evaluation_of_conv_parts(tmp_path):
    conv = ["--encoder", "conv", "--decoder", "conv", "--prior", "vamp", "--pseudo-inputs", "5"]
    argv = ["train", *tiny(epochs=1, eval_particles=2), *conv, "--runs-dir", str(tmp_path)]
    _run(_torchrun(*argv, "--name", "two"))
    run = tmp_path / "two"
    config = json.loads((run / "config.json").read_text())
    assert config["distributed"]["processes"] == 2
    assert config["model"]["decoder"] == "conv"
    evaluate = ["evaluate", str(run), "--num-samples", "30", "--device", "cpu", "--quiet"]
    assert main(evaluate) == 0
    single = load_points(RunDirectory(run), "is-K30")
    _run(_torchrun(*evaluate))
    sharded = load_points(RunDirectory(run), "is-K30")
    assert len(sharded.log_px) == 300
    torch.testing.assert_close(sharded.log_px, single.log_px, rtol=1e-6, atol=1e-9)
