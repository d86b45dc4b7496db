"""A user's own parts work everywhere a built-in one does; a run directory from someone else
cannot make pyro-vae run its code; runs written by pyro-vae 0.1 still load and evaluate to the
same numbers."""

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from helpers import FIXTURES, exit_code, is_summary, tiny

from pyro_vae import (
    CheckpointError,
    ConfigError,
    ModelConfig,
    RunConfig,
    build_vae,
    eval_view,
    load_checkpoint,
    load_vae,
    log_marginal,
    resolve,
    resolve_part,
)
from pyro_vae.app import trust
from pyro_vae.cli import main

TINY = tiny(epochs=2, eval_particles=2)
PRIOR = "user_parts:StudentTPrior"


@pytest.fixture
def user_path(monkeypatch):
    """The user's own module is importable (as from their project directory)."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    yield
    sys.modules.pop("user_parts", None)


def test_a_duck_typed_part_works_and_the_python_api_takes_import_paths(user_path, digits):
    cfg = ModelConfig(latent_dim=3, hidden=[16], prior="user_parts:DuckLaplacePrior")
    vae = build_vae(cfg, digits.data_dim)
    x = eval_view(digits.test, digits.levels, "static", "test")[:5]
    est = log_marginal(vae.model, vae.guide, x, 10, seed=0)
    assert torch.isfinite(est.log_px).all()


def test_part_options_are_checked_against_the_constructor(user_path):
    cfg = RunConfig()
    cfg.model.prior, cfg.model.prior_kwargs = PRIOR, {"dof": 3}
    with pytest.raises(ConfigError, match=r"StudentTPrior takes no option 'dof' .*df"):
        resolve(cfg)
    cfg.model.prior_kwargs = {"latent_dim": 3}
    with pytest.raises(ConfigError, match="may not set latent_dim"):
        resolve(cfg)
    cfg.model.prior_kwargs = {"df": "three"}
    with pytest.raises(ConfigError, match="StudentTPrior"):
        resolve(cfg)


@pytest.mark.parametrize(
    "name,message",
    [
        ("no_such_module_xyz:Prior", "module 'no_such_module_xyz' cannot be imported.*PYTHONPATH"),
        ("user_parts:Missing", "user_parts has no 'Missing'"),
        ("user_parts:not_a_class", "must be a class derived from torch.nn.Module"),
        ("collections:OrderedDict", "must be a class derived from torch.nn.Module"),
        ("user_parts:LaplaceGuide", "LaplaceGuide is a guide, not a prior"),
        ("pyro_vae.model.parts:Prior", "is abstract"),
        ("user parts:X", "an import path has the form"),
        (
            "cauchy",
            "prior .cauchy. is not one of: hierarchical, hierarchical-vamp, learned, mog, normal, "
            "two-layer, two-layer-vamp, vamp",
        ),
    ],
)
def test_bad_part_names_are_clear_errors(user_path, name, message):
    with pytest.raises(ConfigError, match=message):
        resolve_part("prior", name)


# ---------------------------------------------------------------------- safety
def _tiny_run(runs: Path, name: str = "r") -> Path:
    assert main(["train", *TINY, "--epochs", "1", "--runs-dir", str(runs), "--name", name]) == 0
    return runs / name


def _rewrite_config(run: Path, **model) -> None:
    config = json.loads((run / "config.json").read_text())
    config["model"].update(model)
    (run / "config.json").write_text(json.dumps(config))


def test_a_config_naming_a_standard_library_callable_is_refused(tmp_path, capsys):
    run = _tiny_run(tmp_path)
    marker = tmp_path / "popen-ran"
    _rewrite_config(
        run,
        prior="subprocess:Popen",
        prior_kwargs={"args": ["touch", str(marker)]},
    )
    for command in (
        ["evaluate", str(run), "--num-samples", "5"],
        ["figures", str(run)],
        ["report", str(run)],
        ["train", "--resume", str(run), "--epochs", "2", "--quiet"],
    ):
        assert exit_code(command) == 2  # not vouched for: not even imported
        assert "--trust subprocess" in capsys.readouterr().err
        # vouched for, the module is imported, and the class check still refuses the callable
        assert exit_code([*command, "--trust", "subprocess"]) == 2
        assert "must be a class derived from torch.nn.Module" in capsys.readouterr().err
    assert not marker.exists()


def test_a_checkpoint_that_does_not_fit_names_the_parameter_and_both_shapes(tmp_path, capsys):
    run = _tiny_run(tmp_path)
    _rewrite_config(run, latent_dim=5)
    # the first parameter that differs: the mixture prior's means, 10 components x 3 (or 5)
    with pytest.raises(CheckpointError, match=r"'prior.locs' has shape \(10, 3\) in"):
        load_vae(run)
    assert main(["evaluate", str(run), "--num-samples", "5"]) == 1
    err = capsys.readouterr().err
    assert "(10, 3)" in err and "(10, 5)" in err


# ---------------------------------------------------------------------- runs of pyro-vae 0.1
V1_RUNS = sorted(p.name for p in (FIXTURES / "v1_runs").iterdir())


@pytest.mark.parametrize("name", V1_RUNS)
def test_runs_written_by_version_0_1_evaluate_to_the_same_numbers(tmp_path, name, capsys):
    run = tmp_path / name
    shutil.copytree(FIXTURES / "v1_runs" / name, run)
    before = is_summary(run)
    points = load_checkpoint(run / "evaluation_points.pt")
    assert json.loads((run / "config.json").read_text())["format"] == 1
    assert main(["evaluate", str(run), "--num-samples", str(before["num_samples"]), "--quiet"]) == 0
    after = is_summary(run)
    # every batch now draws afresh (since issue 25 the plate-nesting guess no longer consumes the
    # seeded draws, and later batches draw from a seed derived from their first image's index),
    # so the new estimates are independent of 0.1's: the same model within Monte Carlo error
    again = load_checkpoint(run / f"evaluation_is-K{before['num_samples']}_points.pt")
    assert not (run / "evaluation_points.pt").exists()  # moved under its key, then replaced
    diff = (again["log_px"] - points["log_px"]).double()
    se = diff.std() / len(diff) ** 0.5
    assert abs(float(diff.mean())) < 4 * float(se) + 1e-6
    assert not torch.allclose(again["log_px"], points["log_px"], rtol=0.0, atol=1e-4)
    assert after["num_examples"] == before["num_examples"]
    assert (
        after["model"]["parts"]["prior"]["name"]
        == json.loads((run / "config.json").read_text())["model"]["prior"]
    )


def test_a_version_0_1_config_becomes_part_options():
    raw = json.loads((FIXTURES / "v1_runs" / "v1-mog-flow" / "config.json").read_text())
    cfg = RunConfig.from_dict(raw)
    assert cfg.model.prior_kwargs == {"components": 3}
    assert cfg.model.guide_kwargs == {"flows": 1, "flow_type": "iaf"}
    assert cfg.model.likelihood_kwargs == {}
    raw = json.loads((FIXTURES / "v1_runs" / "v1-vamp-gauss" / "config.json").read_text())
    cfg = RunConfig.from_dict(raw)
    assert cfg.model.prior_kwargs == {"pseudo_inputs": 4}
    assert cfg.model.likelihood_kwargs == {"min_sigma": 0.01}


# ---------------------------------------------------------------------- review findings
def test_a_module_reached_through_the_run_directory_from_its_parent_is_never_imported(
    tmp_path, monkeypatch, capsys
):
    run = _tiny_run(tmp_path / "runs", "theirs")
    marker = tmp_path / "planted-ran"
    (run / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('x')\n"
        "import torch\nclass X(torch.nn.Module):\n    pass\n"
    )
    (run / "victim").mkdir()
    (run / "victim" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('v')\n")
    monkeypatch.chdir(tmp_path)  # the run's parent's parent: runs.theirs.evil is importable
    for prior in ("runs.theirs.evil:X", "runs.theirs.victim:X", "runs.theirs.victim.sub:X"):
        _rewrite_config(run, prior=prior, prior_kwargs={})
        assert exit_code(["evaluate", "runs/theirs", "--num-samples", "5"]) == 2
        assert "--trust runs.theirs." in capsys.readouterr().err  # not vouched for
        # vouched for by name, a module inside the run is still never imported
        assert exit_code(["evaluate", "runs/theirs", "--num-samples", "5", "--trust", "runs"]) == 2
        assert "inside the run directory" in capsys.readouterr().err
        with trust.vouching(["runs"]), pytest.raises(ConfigError, match="inside the run dir"):
            load_vae("runs/theirs")
        assert not marker.exists()


@pytest.mark.parametrize(
    "option,message",
    [
        (["--likelihood", "user_parts:PlainBernoulli"], None),
        (["--prior", "user_parts:DividesByZero"], "DividesByZero.*could not be built.*division"),
        (["--prior", "user_parts:NoToEvent"], r"NoToEvent.*\.to_event\(1\)"),
        (["--prior", "mog", "--prior-kwargs", '{"latent_dim": 3}'], "set it with --latent-dim"),
        (["--likelihood-kwargs", '{"pixels": "grey"}'], "set it with --pixels"),
        (
            ["--device", "cuda:7"] if not torch.cuda.is_available() else ["--seed", "-1"],
            "cuda|seed",
        ),
    ],
)
def test_parts_that_fail_or_break_the_contract_are_usage_errors_before_any_run_exists(
    tmp_path, capsys, user_path, option, message
):
    args = ["train", *TINY, "--runs-dir", str(tmp_path), "--name", "r", *option]
    code = exit_code(args)
    err = capsys.readouterr().err
    if message is None:
        assert code == 0, err
        return
    assert code == 2 and "Traceback" not in err
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "r").exists()  # nothing written: the name is still free


def test_a_crafted_config_cannot_allocate_a_huge_model_before_shapes_are_compared(tmp_path):
    run = _tiny_run(tmp_path)
    _rewrite_config(run, prior="mog", prior_kwargs={"components": 10**9})
    with pytest.raises(CheckpointError, match="prior.logits"):
        load_vae(run)


def test_malformed_result_files_give_a_message_in_the_report(tmp_path, capsys):
    run = _tiny_run(tmp_path)
    for name, content in (
        ("evaluation.json", "garbage"),
        ("evaluation.json", '{"model": 5}'),
        ("baseline.json", "[1, 2]"),
    ):
        (run / name).write_text(content)
        assert exit_code(["report", str(run), "--no-figures"]) == 1
        err = capsys.readouterr().err
        assert name in err or "malformed" in err, err
        assert "Traceback" not in err
        (run / name).unlink()
