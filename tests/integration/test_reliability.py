"""Nothing a user does by mistake, and no crash, loses work or runs someone else's code."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
from helpers import tiny, train_tiny
from hypothesis import given, settings
from hypothesis import strategies as st

from pyro_vae import DataFormatError, EpochRecord, RunConfig, Trainer, build_vae, load_checkpoint
from pyro_vae.cli import main
from pyro_vae.data.validate import check_observations
from pyro_vae.infer import objectives as objectives_module
from pyro_vae.infer.training import TensorData


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _train_tiny(root: Path, name: str) -> Path:
    """A 2-epoch run of a tiny VAE on digits, through the command line; its directory."""
    return train_tiny(root, name, tiny(epochs=2))


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


def test_divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint(
    tmp_path, capsys, monkeypatch
):
    real = objectives_module.ELBOS["trace"]

    def nan_after_25_steps(particles, jit, *compiled):
        elbo = real(particles, jit, *compiled)
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
    from pyro_vae.jobs.train import resume_config, train

    _train_tiny(tmp_path, "r")
    run = RunDirectory(tmp_path / "r")
    run.checkpoint_path.unlink()  # as if stopped during epoch 1
    run.metrics_path.unlink()
    trainer = train(resume_config(run.path), run, progress=False, resume=True)
    assert trainer.epoch == 2 and len(_metrics(run.path)) == 2


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
