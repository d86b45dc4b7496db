"""A user's own parts work everywhere a built-in one does; a run directory from someone else
cannot make pyro-vae run its code; runs written by pyro-vae 0.1 still load and evaluate to the
same numbers."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FIXTURES, REPO, is_summary, tiny

from pyro_vae import (
    load_checkpoint,
    load_vae,
    part_names,
    resolve_part,
)
from pyro_vae.cli import main

TINY = tiny(epochs=2, eval_particles=2)


PRIOR = "user_parts:StudentTPrior"


GUIDE = "user_parts:LaplaceGuide"


@pytest.fixture
def user_path(monkeypatch):
    """The user's own module is importable (as from their project directory)."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    yield
    sys.modules.pop("user_parts", None)


def env_with_path(*entries: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(e) for e in entries)
    env.pop("PYRO_VAE_DATA", None)
    env["PYRO_VAE_DATA"] = os.environ["PYRO_VAE_DATA"]
    return env


# ---------------------------------------------------------------------- all the way through
@pytest.mark.e2e
def test_user_prior_and_guide_train_resume_evaluate_draw_and_report(tmp_path, capsys, user_path):
    kwargs = ["--prior", PRIOR, "--prior-kwargs", '{"df": 5.0}', "--guide", GUIDE]
    common = ["--runs-dir", str(tmp_path), "--name", "mine"]
    assert main(["train", *TINY, *common, *kwargs]) == 0
    run = tmp_path / "mine"
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["prior"] == PRIOR and config["model"]["prior_kwargs"] == {"df": 5.0}
    assert config["model"]["guide"] == GUIDE

    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet"]) == 0
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 3
    assert main(["evaluate", str(run), "--num-samples", "20", "--quiet"]) == 0
    ev = is_summary(run)
    parts = ev["model"]["parts"]
    assert parts["prior"]["class"] == "StudentTPrior"
    assert parts["prior"]["import_path"] == PRIOR and parts["prior"]["kwargs"] == {"df": 5.0}
    assert parts["prior"]["parameters"] == 1
    assert parts["guide"]["class"] == "LaplaceGuide" and parts["guide"]["parameters"] > 0
    assert main(["figures", str(run)]) == 0
    assert (run / "figures" / "samples.png").is_file()
    assert main(["report", str(run), "--no-figures"]) == 0
    report = (run / "report.md").read_text()
    assert "StudentTPrior" in report and "LaplaceGuide" in report and "df=5.0" in report
    assert "normal prior" not in report and "diagonal guide" not in report

    _, cfg, vae = load_vae(run)
    assert type(vae.prior).__name__ == "StudentTPrior"
    assert vae.prior.log_df.exp().item() != pytest.approx(5.0)  # it was learned


@pytest.mark.e2e
def test_main_job_baseline_names_the_users_parts(tmp_path, capsys, user_path):
    args = ["--runs-dir", str(tmp_path), "--name", "r", "--num-samples", "20"]
    assert main(["run", *TINY, *args, "--prior", PRIOR, "--baseline-components", "2"]) == 0
    baseline = json.loads((tmp_path / "r" / "baseline.json").read_text())
    assert "StudentTPrior" in baseline["vae"]["model"]
    assert baseline["vae"]["parts"]["prior"]["import_path"] == PRIOR


# ---------------------------------------------------------------------- entry points
@pytest.mark.e2e
def test_installed_packages_publish_parts_under_an_entry_point_group(tmp_path, monkeypatch):
    site = tmp_path / "site"
    dist_info = site / "userparts-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: userparts\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[pyro_vae.parts]\nprior.student-t = user_parts:StudentTPrior\n"
        "guide.laplace = user_parts:LaplaceGuide\n"
    )
    shutil.copy(FIXTURES / "user_parts.py", site / "user_parts.py")
    monkeypatch.syspath_prepend(str(site))
    try:
        assert "student-t" in part_names("prior") and "laplace" in part_names("guide")
        assert resolve_part("prior", "student-t").__name__ == "StudentTPrior"
        proc = subprocess.run(
            [sys.executable, "-m", "pyro_vae", "train", "--help"],
            capture_output=True,
            text=True,
            env=env_with_path(site),
            cwd=tmp_path,
        )
        assert proc.returncode == 0 and "student-t" in proc.stdout and "laplace" in proc.stdout
    finally:
        sys.modules.pop("user_parts", None)


# ---------------------------------------------------------------------- safety
def _tiny_run(runs: Path, name: str = "r") -> Path:
    assert main(["train", *TINY, "--epochs", "1", "--runs-dir", str(runs), "--name", name]) == 0
    return runs / name


def _rewrite_config(run: Path, **model) -> None:
    config = json.loads((run / "config.json").read_text())
    config["model"].update(model)
    (run / "config.json").write_text(json.dumps(config))


@pytest.mark.e2e
def test_a_module_planted_in_the_run_directory_is_never_imported(tmp_path):
    run = _tiny_run(tmp_path)
    marker = tmp_path / "planted-ran"
    (run / "planted.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\n"
        "import torch\nclass Evil(torch.nn.Module):\n    pass\n"
    )
    (run / "pkg").mkdir()
    (run / "pkg" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('pkg')\n")
    for prior in ("planted:Evil", "pkg.sub:Evil"):
        _rewrite_config(run, prior=prior, prior_kwargs={})
        # `python -m` puts the current directory first on sys.path: here, the run directory;
        # vouched for by name, a module inside the run is still never imported
        trusting = ["--trust", "planted", "--trust", "pkg"]
        proc = subprocess.run(
            [sys.executable, "-m", "pyro_vae", "evaluate", ".", "--num-samples", "5", *trusting],
            capture_output=True,
            text=True,
            cwd=run,
            env=env_with_path(REPO),
        )
        assert proc.returncode == 2, proc.stderr
        assert "cannot be imported outside" in proc.stderr and "Traceback" not in proc.stderr
        assert not marker.exists()


@pytest.mark.e2e
def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    run = _tiny_run(tmp_path)
    proc = subprocess.run(
        f"{sys.executable} -m pyro_vae evaluate {run} --num-samples 5 --quiet | head -c 1",
        shell=True,
        capture_output=True,
        text=True,
        env=env_with_path(REPO),
    )
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
