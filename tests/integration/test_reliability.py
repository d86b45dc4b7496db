"""Nothing a user does by mistake, and no crash, loses work or runs someone else's code."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyro_vae import DataFormatError, EpochRecord, RunConfig, Trainer, build_vae, load_checkpoint
from pyro_vae.app.cli import main
from pyro_vae.data.validate import check_observations
from pyro_vae.infer import objectives as objectives_module
from pyro_vae.infer.training import TensorData

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


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pyro_vae.app.cli", *args]


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
    args = ["--epochs", "2", "--hidden", "16", "--latent-dim", "3", "--quiet"]
    assert main(["train", *args, "--runs-dir", str(root), "--name", name]) == 0
    return root / name


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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
        preexec_fn=_default_sigint,
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


def test_resume_can_extend_but_not_cut_short_and_takes_no_other_options(tmp_path, capsys):
    run = _train_tiny(tmp_path, "r")
    assert main(["train", "--resume", str(run), "--epochs", "4", "--quiet"]) == 0
    assert [m["epoch"] for m in _metrics(run)] == [1, 2, 3, 4]
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 4
    with pytest.raises(SystemExit) as info:
        main(["train", "--resume", str(run), "--epochs", "3"])
    assert info.value.code == 2 and "cut it short" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["train", "--resume", str(run), "--latent-dim", "7"])
    assert info.value.code == 2 and "drop --latent-dim" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 1
    assert "not a run directory" in capsys.readouterr().err


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


def test_divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint(
    tmp_path, capsys, monkeypatch
):
    real = objectives_module.ELBOS["trace"]

    def nan_after_25_steps(particles, jit):
        elbo = real(particles, jit)
        original, calls = elbo.differentiable_loss, {"n": 0}

        def differentiable_loss(*args, **kwargs):
            calls["n"] += 1
            loss = original(*args, **kwargs)
            return loss * float("nan") if calls["n"] > 25 else loss

        elbo.differentiable_loss = differentiable_loss
        return elbo

    monkeypatch.setitem(objectives_module.ELBOS, "trace", nan_after_25_steps)
    code = main(
        [
            "train",
            "--epochs",
            "5",
            "--hidden",
            "16",
            "--latent-dim",
            "3",
            "--no-jit",  # counts the calls of the eager objective (the JIT's compile is one)
            "--quiet",
            "--runs-dir",
            str(tmp_path),
            "--name",
            "d",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "epoch 3, step 26" in err and "Traceback" not in err
    assert "smaller --lr" in err
    state = load_checkpoint(tmp_path / "d" / "checkpoint.pt")
    assert state["epoch"] == 2 and len(_metrics(tmp_path / "d")) == 2


def test_a_huge_learning_rate_is_stopped_as_diverged_not_finished(tmp_path, capsys):
    args = ["--epochs", "3", "--hidden", "16", "--latent-dim", "3", "--lr", "1e3", "--quiet"]
    code = main(["train", *args, "--runs-dir", str(tmp_path), "--name", "lr"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "training diverged at epoch 1: the validation ELBO is -" in err
    # the bound: the coin-flip model less 10 nats per pixel and latent dimension, on digits
    # -64 log 2 - 10 (64 + 3)
    assert "below -714.4" in err and "smaller --lr (this run: 1000)" in err
    assert not (tmp_path / "lr" / "checkpoint.pt").exists()


def test_divergence_after_good_epochs_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    real = Trainer.train_epoch

    def lr_jumps_after_epoch_2(self, bar=None):
        if self.epoch == 2:
            for group in self.optimizer.param_groups:
                group["lr"] = 1e3
        return real(self, bar)

    monkeypatch.setattr(Trainer, "train_epoch", lr_jumps_after_epoch_2)
    args = ["--epochs", "6", "--hidden", "16", "--latent-dim", "3", "--quiet"]
    code = main(["train", *args, "--runs-dir", str(tmp_path), "--name", "d"])
    err = capsys.readouterr().err
    assert code == 1 and "training diverged at epoch 3" in err
    assert "The last good checkpoint (epoch 2) is intact" in err
    assert load_checkpoint(tmp_path / "d" / "checkpoint.pt")["epoch"] == 2
    assert len(_metrics(tmp_path / "d")) == 2


def test_a_fall_far_below_the_best_validation_elbo_is_divergence(digits):
    cfg = RunConfig()
    cfg.model.hidden, cfg.model.latent_dim, cfg.model.likelihood = [8], 2, "gaussian"
    vae = build_vae(cfg.model, digits.data_dim, "dequantized")
    trainer = Trainer(vae, cfg.train, digits, pixels="dequantized", progress=False)

    def record(epoch: int, val: float) -> EpochRecord:
        return EpochRecord(epoch, 1, 1, val, val, 0.0, 0.0)

    trainer.history = [record(1, -500.0), record(2, 20.0), record(3, 20.0 - 659.0)]
    assert trainer.divergence(trainer.history[-1]) is None  # 659 < 10 nats x (64 + 2)
    trainer.history[-1] = record(3, 20.0 - 661.0)
    assert "below its best, 20" in trainer.divergence(trainer.history[-1])
    # a density has no coin-flip bound: a poor first epoch is not divergence
    trainer.history = [record(1, -5000.0)]
    assert trainer.divergence(trainer.history[-1]) is None
    assert "is nan" in trainer.divergence(record(2, float("nan")))


def test_a_wide_latent_space_starting_below_the_coin_flip_model_is_not_divergence(digits):
    # an untrained guide's KL term grows with the latent size: one epoch of --latent-dim
    # 20000 on digits measured a training objective of -1149, below -64 log 2 - 10 x 64
    cfg = RunConfig()
    cfg.model.hidden, cfg.model.latent_dim = [8], 20000
    vae = build_vae(cfg.model, digits.data_dim, "dynamic")
    trainer = Trainer(vae, cfg.train, digits, progress=False)
    first = EpochRecord(1, 10, 1197, -1149.0, -1100.0, 0.0, 0.0)
    trainer.history = [first]
    assert trainer.divergence(first) is None
    far = EpochRecord(1, 10, 1197, -1149.0, -64 * math.log(2) - 10 * 20064 - 1, 0.0, 0.0)
    assert "below" in trainer.divergence(far)


def test_corrupt_and_malicious_checkpoints_in_a_run_directory(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--epochs",
                "1",
                "--hidden",
                "16",
                "--latent-dim",
                "3",
                "--quiet",
                "--runs-dir",
                str(tmp_path),
                "--name",
                "r",
            ]
        )
        == 0
    )
    checkpoint = tmp_path / "r" / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:2000])
    assert main(["evaluate", str(tmp_path / "r"), "--num-samples", "10", "--quiet"]) == 1
    assert "corrupt or truncated" in capsys.readouterr().err

    marker = tmp_path / "pwned"

    class RunsCode:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format": 1, "model": RunsCode(), "data_dim": 64}, checkpoint)
    assert main(["figures", str(tmp_path / "r")]) == 1
    assert "refused" in capsys.readouterr().err and not marker.exists()


# --------------------------------------------------------------------------- bad data


def test_bad_tensors_are_refused_before_training():
    good = torch.rand(20, 3)
    with pytest.raises(DataFormatError, match=r"1 NaN value\(s\), the first at row 4, column 1"):
        bad = good.clone()
        bad[4, 1] = float("nan")
        TensorData(bad, good)
    with pytest.raises(DataFormatError, match="infinite"):
        bad = good.clone()
        bad[0, 0] = float("inf")
        TensorData(good, bad)
    with pytest.raises(DataFormatError, match=r"expected shape \[N, D\]"):
        TensorData(torch.rand(5, 2, 2), good)
    with pytest.raises(DataFormatError, match="holds no examples"):
        TensorData(torch.rand(0, 3), good)
    with pytest.raises(DataFormatError, match="has 4 dimensions|expects 3"):
        TensorData(good, torch.rand(5, 4))


def test_a_bernoulli_likelihood_refuses_grey_data_unless_asked():
    cfg = RunConfig()
    cfg.model.hidden, cfg.model.latent_dim = [8], 2
    cfg.train.batch_size = 10
    grey = TensorData(torch.rand(40, 6), torch.rand(10, 6), "grey levels")
    with pytest.raises(DataFormatError, match="needs binary values.*--pixels grey"):
        Trainer(build_vae(cfg.model, 6, "dynamic"), cfg.train, grey, progress=False)
    cfg.data.pixels = "grey"  # asked for explicitly: the Bernoulli formula on grey levels
    Trainer(build_vae(cfg.model, 6, "grey"), cfg.train, grey, progress=False)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 12),
    cols=st.integers(1, 12),
    data=st.data(),
    bad=st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.5, -1.0, 2.0]),
)
def test_validator_finds_the_first_bad_value(rows, cols, data, bad):
    x = torch.randint(0, 2, (rows, cols)).float()
    check_observations(x, binary=True)  # binary data pass
    r = data.draw(st.integers(0, rows - 1))
    c = data.draw(st.integers(0, cols - 1))
    x[r, c] = bad
    with pytest.raises(DataFormatError) as info:
        check_observations(x, binary=True)
    assert f"row {r}, column {c}" in str(info.value)


def test_resume_before_the_first_epoch_ended_starts_over(tmp_path, capsys):
    from pyro_vae import RunDirectory
    from pyro_vae.app.train import resume_config, train

    _train_tiny(tmp_path, "r")
    run = RunDirectory(tmp_path / "r")
    run.checkpoint_path.unlink()  # as if stopped during epoch 1
    run.metrics_path.unlink()
    trainer = train(resume_config(run.path), run, progress=False, resume=True)
    assert trainer.epoch == 2 and len(_metrics(run.path)) == 2


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


def test_jit_training_resumes_to_the_same_numbers(digits):
    from pyro_vae import Trainer, build_vae

    cfg = RunConfig()
    cfg.model.hidden, cfg.model.latent_dim = [32], 4
    cfg.train.epochs, cfg.train.jit, cfg.train.seed = 4, True, 3

    def fresh():
        torch.manual_seed(cfg.train.seed)
        return Trainer(build_vae(cfg.model, 64), cfg.train, digits, progress=False)

    straight = [r.train_objective for r in fresh().fit()]
    first = fresh()
    first.cfg.epochs = 2
    first.fit()
    state = first.state_dict()
    second = fresh()
    second.load_state_dict(state)
    assert [r.train_objective for r in second.fit()] == straight
