"""Data-parallel training and sharded evaluation on torch.distributed (gloo, 2 processes).

The fast tests check the pieces (shards, seeds, shuffles, the recorded configuration, what is
refused); the ``e2e`` ones start real process groups: two processes spawned here, and
``torchrun`` running the command line.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyro.distributions as dist
import pytest
import torch
from helpers import run_shape, tiny
from torch import nn

from pyro_vae import Trainer, load_checkpoint, log_marginal, log_marginal_ais
from pyro_vae.app.evaluations import load_points
from pyro_vae.app.runs import RunDirectory
from pyro_vae.cli import main
from pyro_vae.infer import distributed
from pyro_vae.infer.distributed import (
    SINGLE,
    process_seed,
    sharded_log_marginal,
    sharded_log_marginal_ais,
)
from pyro_vae.infer.training import TensorData, TrainConfig
from pyro_vae.model.decoders import MLPDecoder
from pyro_vae.model.guides import DiagonalGaussianGuide
from pyro_vae.model.likelihoods import BernoulliLikelihood
from pyro_vae.model.priors import StandardNormalPrior
from pyro_vae.model.vae import VAE

# ---------------------------------------------------------------------- two processes

B = 8  # per-process batch
D, LATENT = 6, 2
EVAL_N, EVAL_BATCH, EVAL_K = 90, 20, 60


class PointGuide(nn.Module):
    """q(z|x) a point mass at an encoder's output: no random numbers, so two processes and one
    process must take exactly the same step (a Gaussian guide's noise would differ)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(D, LATENT)

    def forward(self, x: torch.Tensor) -> dist.Distribution:
        return dist.Delta(self.net(x), event_dim=1)


def _vae(point_guide: bool = False) -> VAE:
    torch.manual_seed(0)
    guide = PointGuide() if point_guide else DiagonalGaussianGuide(D, LATENT, hidden=(8,))
    decoder = MLPDecoder(LATENT, D, hidden=(8,))
    return VAE(StandardNormalPrior(LATENT), guide, decoder, BernoulliLikelihood())


def _data(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, D, generator=torch.Generator().manual_seed(seed)).round()


STEP_CONFIGS = {"elbo": dict(elbo="trace"), "iwae": dict(elbo="iwae", particles=3)}


def _one_step(name: str, batch_size: int, group) -> dict[str, torch.Tensor]:
    """Parameters, gradients, loss and steps after one epoch on 2B examples."""
    vae = _vae(point_guide=True)
    cfg = TrainConfig(
        epochs=1,
        batch_size=batch_size,
        device="cpu",
        eval_particles=1,
        lr=1e-2,
        **STEP_CONFIGS[name],
    )
    data = TensorData(_data(2 * B, 1), _data(4, 2))
    trainer = Trainer(vae, cfg, data, progress=False, group=group)
    trainer.train_epoch()
    out = {f"param {k}": v.detach().clone() for k, v in vae.named_parameters()}
    out.update({f"grad {k}": v.grad.clone() for k, v in vae.named_parameters()})
    out["loss"] = torch.tensor(trainer.history[-1].train_objective)
    out["steps"] = torch.tensor(trainer.steps)
    return out


def _two_epochs(group, resumed: bool) -> dict[str, torch.Tensor]:
    """Parameters after two epochs of a Gaussian-guide VAE on 5B + 3 examples (the last step's
    shards are uneven: B and 3), straight through or resumed from a state after the first."""
    cfg = TrainConfig(epochs=2, batch_size=B, device="cpu", eval_particles=1, lr=1e-2)
    data = TensorData(_data(5 * B + 3, 4), _data(4, 2))
    vae = _vae()
    trainer = Trainer(vae, cfg, data, progress=False, group=group)
    trainer.train_epoch()
    if resumed:
        state = copy.deepcopy(trainer.state_dict())
        vae = _vae()  # a fresh process's model: other initial values, then the checkpoint
        torch.manual_seed(12345)
        trainer = Trainer(vae, cfg, data, progress=False, group=group)
        trainer.load_state_dict(state)
    trainer.train_epoch()
    assert trainer.steps == 2 * trainer.steps_per_epoch()
    return {k: v.detach().clone() for k, v in vae.named_parameters()}


def _evaluation(group) -> dict[str, torch.Tensor]:
    vae = _vae()
    est = sharded_log_marginal(
        vae.model, vae.guide, _data(EVAL_N, 3), EVAL_K, group=group, batch_size=EVAL_BATCH, seed=11
    )
    return {k: getattr(est, k) for k in ("log_px", "elbo", "ess", "khat")}


AIS = dict(num_steps=4, num_chains=3, num_leapfrog=2, seed=11)


def _ais(group) -> dict[str, torch.Tensor]:
    vae = _vae()
    est = sharded_log_marginal_ais(vae.model, vae.guide, _data(EVAL_N, 3), group=group, **AIS)
    return {k: getattr(est, k) for k in ("log_px", "log_weights", "acceptance", "step_size")}


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    group = distributed.init_from_environment("cpu")
    assert group.active and group.backend == "gloo"
    results = {name: _one_step(name, B, group) for name in STEP_CONFIGS}
    results["evaluation"] = _evaluation(group)
    results["ais"] = _ais(group)
    results["straight"] = _two_epochs(group, resumed=False)
    results["resumed"] = _two_epochs(group, resumed=True)
    torch.save(results, Path(out) / f"rank{rank}.pt")
    distributed.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("dist")
    torch.multiprocessing.spawn(_worker, args=(2, _free_port(), str(out)), nprocs=2)
    return [torch.load(out / f"rank{r}.pt") for r in range(2)]


@pytest.mark.e2e
@pytest.mark.parametrize("name", list(STEP_CONFIGS))
def test_two_processes_of_b_take_the_step_of_one_process_of_2b(two_processes, name):
    expected = _one_step(name, 2 * B, SINGLE)
    for rank in range(2):
        got = two_processes[rank][name]
        assert got.keys() == expected.keys()
        for key in expected:
            torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-5, msg=key)
    assert expected["steps"] == 1
    # the check can fail: one process with batch B (two steps) ends elsewhere
    half = _one_step(name, B, SINGLE)
    assert not torch.allclose(
        half["grad decoder.0.weight"],
        expected["grad decoder.0.weight"],
        rtol=1e-3,
    )


@pytest.mark.e2e
def test_two_processes_give_every_image_the_one_process_estimate(two_processes):
    vae = _vae()
    one = log_marginal(
        vae.model, vae.guide, _data(EVAL_N, 3), EVAL_K, batch_size=EVAL_BATCH, seed=11
    )
    for rank in range(2):
        got = two_processes[rank]["evaluation"]
        for key, value in got.items():
            assert value.shape == (EVAL_N,)
            torch.testing.assert_close(
                value, getattr(one, key).double(), rtol=1e-6, atol=1e-9, equal_nan=True, msg=key
            )


@pytest.mark.e2e
def test_a_distributed_run_is_reproducible_and_resumes_exactly(two_processes):
    for rank in range(2):
        straight, resumed = two_processes[rank]["straight"], two_processes[rank]["resumed"]
        for key, value in straight.items():
            assert torch.equal(value, resumed[key]), key
            assert torch.equal(value, two_processes[0]["straight"][key]), key  # one model
    # and the processes' own random numbers count: one process's run ends elsewhere
    one = _two_epochs(SINGLE, resumed=False)
    assert not torch.allclose(one["decoder.0.weight"], straight["decoder.0.weight"])


@pytest.mark.e2e
def test_two_processes_give_every_image_the_one_process_ais_estimate(two_processes):
    vae = _vae()
    one = log_marginal_ais(vae.model, vae.guide, _data(EVAL_N, 3), **AIS)
    for rank in range(2):
        for key, value in two_processes[rank]["ais"].items():
            expected = getattr(one, key).double()
            assert value.shape == expected.shape, key
            torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-9, msg=key)


TINY = tiny(epochs=None, eval_particles=2)


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", distributed.TIMEOUT_ENV: "60"}


def _torchrun(*args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        "-m",
        "pyro_vae",
        *args,
    ]


def _pyro_vae(*args: str) -> list[str]:
    return [sys.executable, "-m", "pyro_vae", *args]


def _run(cmd: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.e2e
def test_torchrun_trains_and_evaluates_like_one_process(tmp_path):
    common = ["train", "--epochs", "2", *TINY, "--runs-dir", str(tmp_path)]
    logging = importlib.util.find_spec("tensorboard") is not None
    common += ["--tensorboard"] if logging else []  # written by process 0 alone
    out = _run(_torchrun(*common, "--name", "two")).stdout
    assert out.count("run directory:") == 1  # process 0 alone prints
    assert main([*common, "--name", "one"]) == 0  # one process, in this one
    two, one = tmp_path / "two", tmp_path / "one"
    assert run_shape(two) == run_shape(one)
    if logging:
        assert len(list((two / "tensorboard").iterdir())) == 1  # one event file
    config = json.loads((two / "config.json").read_text())["distributed"]
    assert config["processes"] == 2 and config["backend"] == "gloo"
    assert config["process_seeds"] == [process_seed(0, r, 2) for r in range(2)]
    state = load_checkpoint(two / "checkpoint.pt")
    assert state["epoch"] == 2 and state["steps"] == 2 * -(-1197 // 256)  # global batch 2 x 128

    evaluate = ["evaluate", str(two), "--num-samples", "60", "--device", "cpu", "--quiet"]
    assert main(evaluate) == 0
    single = load_points(RunDirectory(two), "is-K60")
    assert "evaluation.json" in _run(_torchrun(*evaluate)).stdout
    sharded = load_points(RunDirectory(two), "is-K60")
    assert len(sharded.log_px) == 300
    for key in ("log_px", "elbo", "ess", "khat"):
        torch.testing.assert_close(
            sharded.values[key], single.values[key], rtol=1e-6, atol=1e-9, equal_nan=True, msg=key
        )


def _rank_pids(launcher: int) -> dict[int, int]:
    """The worker processes torchrun started: rank -> pid."""
    pids = {}
    for task in Path(f"/proc/{launcher}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            for item in environ:
                if item.startswith(b"RANK="):
                    pids[int(item[5:])] = int(child)
    return pids


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
def test_a_killed_process_ends_the_job_and_the_run_resumes(tmp_path):
    run = tmp_path / "killed"
    cmd = _torchrun(
        "train",
        "--epochs",
        "200",
        "--batch-size",
        "8",
        *TINY,
        "--runs-dir",
        str(tmp_path),
        "--name",
        "killed",
    )
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    try:
        start = time.time()
        while not (run / "metrics.jsonl").is_file():  # an epoch has completed
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.time() - start < 180, "no epoch completed"
            time.sleep(0.1)
        pids = _rank_pids(proc.pid)
        assert sorted(pids) == [0, 1]
        os.kill(pids[1], signal.SIGKILL)
        killed = time.time()
        _, err = proc.communicate(timeout=90)  # never hangs: ends well within the timeout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0
    assert time.time() - killed < 90
    assert "pyro-vae: " in err  # the surviving process says what happened, in one line
    assert "[rank0]: Traceback" not in err
    done = load_checkpoint(run / "checkpoint.pt")["epoch"]  # intact: it loads
    assert 1 <= done < 200
    # and it resumes, here with one process instead of two
    _run(_pyro_vae("train", "--resume", str(run), "--epochs", str(done + 1), "--quiet"))
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == done + 1
    assert json.loads((run / "config.json").read_text())["distributed"]["processes"] == 1
