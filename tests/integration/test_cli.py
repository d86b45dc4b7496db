import json
import math
import shutil
import subprocess
import sys

import pytest
from conftest import make_idx_files
from result_files import is_summary

from pyro_vae import eval_view, load_checkpoint, load_dataset
from pyro_vae.app.cli import main
from pyro_vae.app.runs import load_vae
from pyro_vae.infer.marginal import log_marginal

TINY = ["--epochs", "3", "--hidden", "32", "--latent-dim", "4", "--quiet", "--eval-particles", "2"]


@pytest.mark.e2e
def test_run_end_to_end_leaves_every_promised_file(tmp_path, capsys):
    args = ["--runs-dir", str(tmp_path), "--name", "tiny", "--num-samples", "50"]
    code = main(["run", *TINY, *args])
    out = capsys.readouterr().out
    assert code == 0
    run = tmp_path / "tiny"
    for name in (
        "config.json",
        "metrics.jsonl",
        "checkpoint.pt",
        "evaluation.json",
        "figures/elbo_curves.png",
        "figures/reconstructions.png",
        "figures/samples.png",
    ):
        assert (run / name).is_file(), name
        if not name.endswith(".pt"):
            assert name.split("/")[-1] in out  # the output says where everything is
    assert f"run directory: {run}" in out and "test ELBO" in out

    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    for m in metrics:
        assert set(m) >= {"train_objective", "val_elbo", "wall_seconds", "examples_seen"}
        assert m["val_elbo"] < 0
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["epochs"] == 3 and config["model"]["hidden"] == [32]
    evaluation = is_summary(run)
    assert evaluation["num_examples"] == 300 and evaluation["num_samples"] == 50
    assert evaluation["elbo"] < evaluation["log_px"] < 0
    assert f"{evaluation['log_px']:9.3f}" in out and "Pareto k-hat" in out
    baseline = json.loads((run / "baseline.json").read_text())
    assert [m["n_components"] for m in baseline["mixtures"]] == [1, 10, 50]
    assert baseline["vae"]["log_px"] == pytest.approx(evaluation["log_px"])
    assert "BernoulliMixture(K=10)" in out and "VAE - BernoulliMixture" in out

    # rebuilt from its directory alone, the model gives the recorded test log p(x) exactly
    _, cfg, vae = load_vae(run)
    assert cfg.model.latent_dim == 4 and vae.latent_dim == 4
    x_test = eval_view(load_dataset("digits").test, 17, cfg.data.pixels, "test")
    again = log_marginal(vae.model, vae.guide, x_test, 50, seed=evaluation["seed"])
    assert again.summary()["log_px"] == pytest.approx(evaluation["log_px"], rel=1e-6)


def test_evaluate_writes_log_px_with_diagnostics(tmp_path, capsys):
    assert main(["train", *TINY, "--runs-dir", str(tmp_path), "--name", "r"]) == 0
    code = main(
        [
            "evaluate",
            str(tmp_path / "r"),
            "--num-samples",
            "100",
            "--split",
            "val",
            "--device",
            "cpu",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "val log p(x)" in out and "K=100" in out
    assert not (tmp_path / "r" / "evaluation.json").exists()  # the test's file is not touched
    ev = is_summary(tmp_path / "r", "val")
    assert ev["split"] == "val" and ev["num_examples"] == 300 and ev["num_samples"] == 100
    for key in (
        "log_px_se",
        "log_px_mc_se",
        "elbo",
        "gap",
        "ess_median",
        "khat_max",
        "khat_above_0.7",
        "reliable",
        "bits_per_dim",
    ):
        assert ev[key] is not None, key
    assert 1 <= ev["ess_min"] <= ev["ess_median"] <= 100
    assert ev["bits_per_dim"] == pytest.approx(-ev["log_px"] / (64 * math.log(2)))
    points = load_checkpoint(tmp_path / "r" / "evaluation_val_is-K100_points.pt")
    assert points["log_px"].shape == (300,)
    assert points["log_px"].mean().item() == pytest.approx(ev["log_px"])


def test_evaluate_refuses_bad_input(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 1
    assert "not a run directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(tmp_path), "--num-samples", "0"])
    assert info.value.code == 2


def test_figures_regenerate_from_the_run_directory(tmp_path, capsys):
    assert main(["train", *TINY, "--runs-dir", str(tmp_path), "--name", "r"]) == 0
    assert not (tmp_path / "r" / "figures").exists()
    assert main(["figures", str(tmp_path / "r")]) == 0
    # a train-only run has no baseline mixtures and no autoencoder: no figures of those
    assert {p.name for p in (tmp_path / "r" / "figures").iterdir()} == {
        "elbo_curves.png",
        "reconstructions.png",
        "samples.png",
        "manifold.png",
        "latent_space.png",
    }


@pytest.mark.e2e
def test_run_on_mnist_files_from_a_data_dir(tmp_path, capsys):
    make_idx_files(tmp_path / "data", n_train=300, n_test=40)
    code = main(
        [
            "run",
            *TINY,
            "--dataset",
            "mnist",
            "--data-dir",
            str(tmp_path / "data"),
            "--no-download",
            "--batch-size",
            "50",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--name",
            "m",
        ]
    )
    assert code == 0
    assert is_summary(tmp_path / "runs" / "m")["num_examples"] == 40


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "--latent-dim", "0"], "expected a positive integer"),
        (["run", "--lr", "-1"], "expected a positive"),
        (["run", "--dataset", "cifar"], "invalid choice"),
        (["run", "--hidden"], "expected at least one argument"),
        (["figures"], "required"),
    ],
)
def test_bad_arguments_are_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_batch_larger_than_data_is_a_usage_error_and_leaves_no_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--batch-size", "5000", "--runs-dir", str(tmp_path), "--name", "x"])
    assert info.value.code == 2
    assert "larger than the 1197 training examples" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_missing_data_set_is_an_error_not_a_traceback(tmp_path, capsys):
    code = main(
        [
            "run",
            "--dataset",
            "mnist",
            "--no-download",
            "--data-dir",
            str(tmp_path),
            "--runs-dir",
            str(tmp_path / "runs"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "train-images-idx3-ubyte" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_an_existing_run_is_never_overwritten(tmp_path, capsys):
    assert main(["train", *TINY, "--runs-dir", str(tmp_path), "--name", "keep"]) == 0
    before = (tmp_path / "keep" / "checkpoint.pt").read_bytes()
    with pytest.raises(SystemExit) as info:
        main(["train", *TINY, "--runs-dir", str(tmp_path), "--name", "keep"])
    assert info.value.code == 2 and "already holds a run" in capsys.readouterr().err
    assert (tmp_path / "keep" / "checkpoint.pt").read_bytes() == before


def test_figures_of_a_non_run_is_a_clear_error(tmp_path, capsys):
    assert main(["figures", str(tmp_path)]) == 1
    assert "not a run directory" in capsys.readouterr().err


def test_datasets_lists_where_each_is_found(tmp_path, capsys):
    make_idx_files(tmp_path)
    assert main(["datasets", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and f"mnist          {tmp_path}" in out


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("pyro-vae") is None, reason="console script not installed")
def test_console_script_exit_status_and_no_traceback():
    proc = subprocess.run(["pyro-vae", "run", "--epochs", "-5"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "pyro_vae.app.cli", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.startswith("pyro-vae ")


def test_every_config_field_has_one_command_line_option():
    import dataclasses

    from pyro_vae import DataConfig, ModelConfig, TrainConfig
    from pyro_vae.app.options import OPTIONS

    for section, cls in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
        fields = [o.field for o in OPTIONS if o.section == section]
        assert sorted(fields) == sorted(f.name for f in dataclasses.fields(cls)), section


SHORTHANDS = {
    "--pseudo-inputs": ("prior_kwargs", "pseudo_inputs"),
    "--components": ("prior_kwargs", "components"),
    "--flows": ("guide_kwargs", "flows"),
    "--min-sigma": ("likelihood_kwargs", "min_sigma"),
}


@pytest.mark.e2e
@pytest.mark.parametrize(
    "parts",
    [
        [
            "--prior",
            "vamp",
            "--pseudo-inputs",
            "7",
            "--guide",
            "flow",
            "--flows",
            "2",
            "--elbo",
            "iwae",
            "--particles",
            "3",
        ],
        [
            "--prior",
            "mog",
            "--components",
            "3",
            "--guide",
            "full",
            "--likelihood",
            "gaussian-learned",
            "--min-sigma",
            "0.01",
            "--beta",
            "0.5",
            "--kl-warmup",
            "2",
        ],
    ],
)
def test_swapped_parts_are_recorded_and_reload_from_the_run_directory(tmp_path, capsys, parts):
    args = [*TINY, "--runs-dir", str(tmp_path), "--name", "p", "--num-samples", "60", *parts]
    assert main(["run", *args]) == 0
    config = json.loads((tmp_path / "p" / "config.json").read_text())
    flags = dict(zip(parts[::2], parts[1::2], strict=True))
    for flag, value in flags.items():
        section = "train" if flag in ("--elbo", "--particles", "--beta", "--kl-warmup") else "model"
        if flag in SHORTHANDS:
            kwargs, key = SHORTHANDS[flag]
            assert str(config["model"][kwargs][key]) == value, flag
        else:
            key = flag[2:].replace("-", "_")
            assert str(config[section][key]) == value, flag
    ev = is_summary(tmp_path / "p")
    _, cfg, vae = load_vae(tmp_path / "p")
    data = load_dataset("digits")
    x = eval_view(data.test, data.levels, cfg.data.pixels, "test")
    again = log_marginal(vae.model, vae.guide, x, 60, seed=ev["seed"]).summary()
    assert again["log_px"] == pytest.approx(ev["log_px"], rel=1e-6)
