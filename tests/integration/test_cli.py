import math

import pytest
from helpers import is_summary, make_idx_files, tiny

from pyro_vae import load_checkpoint
from pyro_vae.cli import main

TINY = tiny(epochs=3, hidden=32, latent_dim=4, eval_particles=2)


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


def test_every_config_field_has_one_command_line_option():
    import dataclasses

    from pyro_vae import DataConfig, ModelConfig, TrainConfig
    from pyro_vae.app.options import OPTIONS
    from pyro_vae.config import declared

    for section, cls in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
        fields = [o.field for o in OPTIONS if o.section == section]
        records = {d.name for d in declared(cls) if d.flag is None}  # a data file's SHA-256...
        assert records <= {"split_seed", "data_sha256", "test_sha256", "data_shape"}, section
        names = [f.name for f in dataclasses.fields(cls) if f.name not in records]
        assert sorted(fields) == sorted(names), section
