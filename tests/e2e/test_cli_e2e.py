import json
import shutil
import subprocess
import sys

import pytest
from helpers import is_summary, make_idx_files, tiny

from pyro_vae import eval_view, load_dataset
from pyro_vae.app.runs import load_vae
from pyro_vae.cli import main
from pyro_vae.infer.marginal import log_marginal

TINY = tiny(epochs=3, hidden=32, latent_dim=4, eval_particles=2)


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
    assert again.summary().log_px == pytest.approx(evaluation["log_px"], rel=1e-6)


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


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("pyro-vae") is None, reason="console script not installed")
def test_console_script_exit_status_and_no_traceback():
    proc = subprocess.run(["pyro-vae", "run", "--epochs", "-5"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "pyro_vae", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.startswith("pyro-vae ")


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
            "two-layer-vamp",  # the VampPrior refuses a flow guide; its two-layer form takes one
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
    assert again.log_px == pytest.approx(ev["log_px"], rel=1e-6)
