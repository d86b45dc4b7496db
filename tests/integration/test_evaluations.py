"""Evaluations kept per estimator and setting; AIS and BDMC through the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import exit_code, tiny, train_tiny

from pyro_vae.app.checkpoint import load_checkpoint
from pyro_vae.app.evaluations import describe_key, estimate_key, read_evaluations
from pyro_vae.app.overview import list_runs
from pyro_vae.app.runs import RunDirectory
from pyro_vae.cli import main
from pyro_vae.errors import CheckpointError

TINY = tiny(eval_particles=2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("runs"), "r", TINY)


def _copy(run: Path, parent: Path, name: str = "r") -> Path:
    target = parent / name
    shutil.copytree(run, target)
    return target


def test_keys_name_the_method_and_its_settings():
    assert estimate_key({"method": "is", "num_samples": 5000}) == "is-K5000"
    ais = {"method": "ais", "num_steps": 500, "num_chains": 8, "num_leapfrog": 5}
    assert estimate_key(ais) == "ais-T500-C8-L5"
    assert estimate_key({**ais, "start": "prior"}) == "ais-T500-C8-L5-prior"
    assert estimate_key({**ais, "method": "bdmc", "num_examples": 20}) == "bdmc-N20-T500-C8-L5"
    assert describe_key("is-K5000") == "importance sampling, K = 5000"
    assert "T = 500 steps, C = 8 chains" in describe_key("ais-T500-C8-L5-prior")
    assert describe_key("ais-T500-C8-L5-prior").endswith("from the prior")


def test_each_estimate_is_kept_beside_the_others(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    assert main(["evaluate", str(run), "--num-samples", "20", "--quiet"]) == 0
    argv = ["evaluate", str(run), "--method", "ais", "--steps", "5", "--chains", "2", "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "AIS from the guide, T=5, C=2 chains" in out and "ais-T5-C2-L5" in out
    assert main(["evaluate", str(run), "--num-samples", "30", "--quiet"]) == 0
    first = read_evaluations(RunDirectory(run)).estimates
    assert set(first) == {"is-K20", "is-K30", "ais-T5-C2-L5"}
    for key in first:
        points = load_checkpoint(run / f"evaluation_{key}_points.pt")
        assert points["log_px"].shape == (first[key].num_examples,)
    # the same setting again replaces only its own entry
    assert main(["evaluate", str(run), "--num-samples", "20", "--seed", "3", "--quiet"]) == 0
    again = read_evaluations(RunDirectory(run)).estimates
    assert again["is-K20"].seed == 3 and again["is-K30"] == first["is-K30"]
    assert again["ais-T5-C2-L5"] == first["ais-T5-C2-L5"]
    # the report names the estimator of every number
    assert main(["report", str(run), "--no-figures"]) == 0
    md = (run / "report.md").read_text()
    assert "## Test log-likelihood by estimator" in md
    for key in again:
        assert describe_key(key) in md
    assert "Test log p(x) =" in md and "(AIS, T = 5 steps" in md  # the headline says how


def test_bdmc_through_the_command_line(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    argv = ["evaluate", str(run), "--bdmc", "6", "--steps", "4", "--chains", "2"]
    assert main([*argv, "--num-samples", "10", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "lower bound (forward AIS)" in out and "upper bound (reverse AIS)" in out
    assert "importance sampling, K=10" in out
    evaluations = read_evaluations(RunDirectory(run))
    assert evaluations.estimates == {}  # --bdmc alone: only the sandwich
    (summary,) = evaluations.bdmc.values()
    assert summary.num_examples == 6 and summary.gap == pytest.approx(
        summary.upper - summary.lower, abs=1e-9
    )
    points = load_checkpoint(run / "evaluation_bdmc-N6-T4-C2-L5_points.pt")
    assert points["log_px"].shape == points["upper"].shape == points["is_log_px"].shape == (6,)
    gap = (points["upper"] - points["log_px"]).mean().item()
    assert gap == pytest.approx(summary.gap, abs=1e-9)
    assert main(["report", str(run), "--no-figures"]) == 0
    assert "BDMC on 6 simulated images" in (run / "report.md").read_text()


def test_ais_from_a_guide_without_a_density_is_refused_before_any_work(tmp_path, capsys):
    argv = ["train", *TINY, "--guide", "flow", "--flow-type", "planar", "--flows", "1"]
    assert main([*argv, "--runs-dir", str(tmp_path), "--name", "p"]) == 0
    run = tmp_path / "p"
    assert exit_code(["evaluate", str(run), "--method", "ais", "--steps", "3", "--quiet"]) == 2
    assert "--ais-start prior" in capsys.readouterr().err
    assert not (run / "evaluation.json").exists()
    argv = ["evaluate", str(run), "--method", "ais", "--steps", "3", "--chains", "2"]
    assert main([*argv, "--ais-start", "prior", "--quiet"]) == 0
    assert "ais-T3-C2-L5-prior" in read_evaluations(RunDirectory(run)).estimates


@pytest.mark.parametrize(
    "content, words",
    [
        ("garbage", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"format": 2, "estimates": []}', "estimates must be a JSON object"),
        ('{"format": 2, "estimates": {"is-K5": {"num_samples": 5}}}', "num_examples"),
        (
            '{"format": 2, "estimates": {"is-K5": {"num_samples": 5, "num_examples": 3, '
            '"log_px": "high"}}}',
            "log_px must be a finite number",
        ),
        (
            '{"format": 2, "estimates": {"is-K9": {"num_samples": 5, "num_examples": 3, '
            '"log_px": -1.0}}}',
            "another kind",
        ),
        ('{"format": 2, "estimates": {"x": {"method": "magic"}}}', "unknown method"),
        ('{"log_px": -1.0, "num_samples": true, "num_examples": 3}', "num_samples"),
    ],
)
def test_a_malformed_evaluation_file_is_a_message_naming_it(
    trained, tmp_path, capsys, content, words
):
    run = _copy(trained, tmp_path)
    (run / "evaluation.json").write_text(content)
    with pytest.raises(CheckpointError, match=words):
        read_evaluations(RunDirectory(run))
    assert exit_code(["report", str(run), "--no-figures"]) == 1
    err = capsys.readouterr().err
    assert "evaluation.json" in err and "Traceback" not in err
    assert exit_code(["evaluate", str(run), "--num-samples", "5", "--quiet"]) == 1
    assert "evaluation.json" in capsys.readouterr().err
    assert (run / "evaluation.json").read_text() == content  # never overwritten unread


def test_a_version_0_1_file_is_read_as_its_importance_sampling_entry(trained, tmp_path):
    run = _copy(trained, tmp_path)
    flat = {"log_px": -30.0, "num_samples": 64, "num_examples": 3, "log_px_se": 0.5}
    (run / "evaluation.json").write_text(json.dumps(flat))
    evaluations = read_evaluations(RunDirectory(run))
    assert list(evaluations.estimates) == ["is-K64"] and evaluations.legacy == {"is-K64"}
    assert evaluations.headline()[1].log_px == -30.0


# ---------------------------------------------------------------------- list and compare
def test_list_gives_one_line_per_run_with_its_status(trained, tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    done = _copy(trained, runs, "a")
    assert main(["evaluate", str(done), "--num-samples", "20", "--quiet"]) == 0
    short = _copy(trained, runs, "b")
    config = json.loads((short / "config.json").read_text())
    config["train"]["epochs"] = 5  # asked for 5, holds 1
    (short / "config.json").write_text(json.dumps(config))
    broken = _copy(trained, runs, "c")
    (broken / "config.json").write_text("{")
    capsys.readouterr()
    assert main(["list", str(runs)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("run") and len(out) == 4
    a, b, c = out[1:]
    assert "digits" in a and "1/1" in a and "(is-K20)" in a and a.endswith("finished")
    assert "1/5" in b and b.endswith("interrupted")
    assert c.startswith("c") and "unreadable" in c and "not valid JSON" in c
    with RunDirectory(done).writing():  # another writer holds the lock
        status = {line.name: line.status for line in list_runs(runs)}
    assert status["a"] == "running" and status["b"] == "interrupted"
    assert exit_code(["list", str(tmp_path / "nowhere")]) == 2


def test_compare_pairs_the_same_test_images_and_refuses_different_ones(trained, tmp_path, capsys):
    a, b = _copy(trained, tmp_path, "a"), _copy(trained, tmp_path, "b")
    assert main(["evaluate", str(a), "--num-samples", "20", "--quiet"]) == 0
    assert main(["evaluate", str(b), "--num-samples", "20", "--seed", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    pa = load_checkpoint(a / "evaluation_is-K20_points.pt")["log_px"].double()
    pb = load_checkpoint(b / "evaluation_is-K20_points.pt")["log_px"].double()
    d = pb - pa
    assert f"{d.mean().item():+.3f} ± {(d.std() / len(d) ** 0.5).item():.3f}" in out
    assert "importance sampling, K = 20" in out
    # another estimator only in one run: no common evaluation
    assert exit_code(["compare", str(a), str(b), "--estimate", "is-K99"]) == 2
    assert "holds no is-K99 evaluation" in capsys.readouterr().err
    # a different test tensor is refused
    data = json.loads((b / "evaluation.json").read_text())
    data["estimates"]["is-K20"]["data_sha256"] = "0" * 64
    (b / "evaluation.json").write_text(json.dumps(data))
    assert exit_code(["compare", str(a), str(b)]) == 2
    assert "not evaluated on the same test images" in capsys.readouterr().err


def test_a_number_of_samples_that_cannot_fit_is_refused_before_any_work(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    argv = ["evaluate", str(run), "--num-samples", "1000000000", "--quiet"]
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert "--num-samples 1000000000 would need about" in err and "Traceback" not in err
    assert not (run / "evaluation.json").exists()


def test_compare_says_runs_of_different_data_cannot_be_compared(trained, tmp_path, capsys):
    a, b = _copy(trained, tmp_path, "a"), _copy(trained, tmp_path, "b")
    config = json.loads((b / "config.json").read_text())
    config["data"]["dataset"] = "mnist"
    (b / "config.json").write_text(json.dumps(config))
    assert exit_code(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "model different data: their log p(x) cannot be compared" in err
    assert "Evaluate them alike" not in err


def test_list_shows_whole_names_never_cut_mid_word(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path, "long")
    config = json.loads((run / "config.json").read_text())
    config["model"]["prior"] = "pyro_vae.model.priors:MixtureOfGaussiansPrior"
    (run / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["list", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "MixtureOfGaussiansPrior / " in out and "pyro_vae.model.priors" not in out
