"""Code chosen by a foreign configuration never runs unless the user vouches for it, and a
user's part can neither end pyro-vae with its own exit status nor keep it from stopping on
Ctrl-C or SIGTERM (issue 24)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from helpers import FIXTURES, exit_code, tiny, train_tiny

from pyro_vae import ConfigError, load_vae
from pyro_vae.app import trust
from pyro_vae.cli import main

TINY = tiny(eval_particles=2)
# a class a run's config may name: the default prior itself, so the checkpoint fits
GOOD_PART = (
    "import torch\nfrom pyro_vae.model.priors import MixtureOfGaussiansPrior\n"
    "class Evil(MixtureOfGaussiansPrior):\n    pass\n"
)
COMMANDS = (
    ["evaluate", "RUN", "--num-samples", "5", "--quiet"],
    ["figures", "RUN", "--quiet"],
    ["report", "RUN", "--quiet"],
    ["train", "--resume", "RUN", "--epochs", "2", "--quiet"],
    ["run", "--resume", "RUN", "--epochs", "2", "--quiet", "--num-samples", "5"],
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("runs"), "r", TINY)


@pytest.fixture
def foreign(tmp_path, trained, monkeypatch) -> Path:
    """A downloaded folder, the current directory: ``run/`` beside the user's own files."""
    shutil.copytree(trained, tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in ("evil", "setup", "planted", "exits_at_import"):
        sys.modules.pop(name, None)


def plant(folder: Path, module: str, marker: Path, body: str = GOOD_PART) -> None:
    ran = f"with open({str(marker)!r}, 'a') as _f: _f.write('ran')\n"
    (folder / f"{module}.py").write_text(ran + body)


def name_part(run: Path, prior: str, kind: str = "prior") -> None:
    config = json.loads((run / "config.json").read_text())
    config["model"][kind] = prior
    config["model"][f"{kind}_kwargs"] = {}
    (run / "config.json").write_text(json.dumps(config))


# ---------------------------------------------------------------------- the trust boundary
def test_a_module_beside_a_foreign_run_is_never_imported_unless_vouched(foreign, capsys):
    marker = foreign / "evil-ran"
    plant(foreign, "evil", marker)
    name_part(foreign / "run", "evil:Evil")
    for command in COMMANDS:
        argv = [word.replace("RUN", "run") for word in command]
        assert exit_code(argv) == 2, argv
        err = capsys.readouterr().err
        assert "module 'evil' is not built in" in err and "--trust evil" in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert not marker.exists()
    # vouched for on the command line, it is the user's own: imported, and the run evaluates
    assert exit_code(["evaluate", "run", "--num-samples", "5", "--quiet", "--trust", "evil"]) == 0
    assert marker.exists()


@pytest.mark.parametrize("how", ["environment", "allow-list"])
def test_a_module_vouched_for_by_name_is_imported_from_the_users_path(
    foreign, how, monkeypatch, tmp_path_factory
):
    project = tmp_path_factory.mktemp("project")  # on the user's path, not the current directory
    marker = foreign / "evil-ran"
    plant(project, "evil", marker)
    monkeypatch.syspath_prepend(str(project))
    name_part(foreign / "run", "evil:Evil")
    if how == "environment":
        monkeypatch.setenv(trust.ENV_VAR, f"numpy{os.pathsep}evil")
    else:
        trust.allow_list_path().parent.mkdir(parents=True)
        trust.allow_list_path().write_text("# mine\nevil  # my prior\n")
    assert exit_code(["evaluate", "run", "--num-samples", "5", "--quiet"]) == 0
    assert marker.exists()


@pytest.mark.parametrize("how", ["environment", "allow-list"])
def test_a_vouch_by_name_does_not_cover_a_file_in_the_current_directory(foreign, how, capsys):
    """A downloaded folder cannot bring its own file of a name the user vouched for."""
    marker = foreign / "evil-ran"
    plant(foreign, "evil", marker)
    name_part(foreign / "run", "evil:Evil")
    if how == "environment":
        os.environ[trust.ENV_VAR] = "evil"
    else:
        trust.allow_list_path().parent.mkdir(parents=True)
        trust.allow_list_path().write_text("evil\n")
    try:
        assert exit_code(["evaluate", "run", "--num-samples", "5", "--quiet"]) == 2
    finally:
        os.environ.pop(trust.ENV_VAR, None)
    err = capsys.readouterr().err
    assert "vouched for by name, which does not cover a file in the current directory" in err
    assert f"'evil {(foreign / 'evil.py').resolve()}'" in err and not marker.exists(), err


def test_a_vouch_for_a_file_covers_that_file_and_no_other(foreign, tmp_path_factory, capsys):
    """The campaign's attack: the allow-list vouches for the user's own ``userparts`` (written
    by train with its location); a downloaded folder brings another ``userparts.py``."""
    project = tmp_path_factory.mktemp("project")
    mine, theirs = project / "mine-ran", foreign / "theirs-ran"
    plant(project, "userparts", mine)
    plant(foreign, "userparts", theirs)
    trust.allow_list_path().parent.mkdir(parents=True)
    trust.allow_list_path().write_text(f"userparts {(project / 'userparts.py').resolve()}\n")
    name_part(foreign / "run", "userparts:Evil")
    try:
        assert exit_code(["evaluate", "run", "--num-samples", "5", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "you vouched for 'userparts' at" in err and str(project.resolve()) in err, err
        assert not theirs.exists() and not mine.exists()
        # from the user's own project, the file vouched for is the one found: it is imported
        shutil.copytree(foreign / "run", project / "run")
        os.chdir(project)
        assert exit_code(["evaluate", "run", "--num-samples", "5", "--quiet"]) == 0
        assert mine.exists() and not theirs.exists()
    finally:
        sys.modules.pop("userparts", None)


def test_the_users_own_project_and_the_standard_library_are_not_run_by_a_config(foreign, capsys):
    marker = foreign / "setup-ran"
    plant(foreign, "setup", marker, "raise SystemExit('setup.py ran')\n")
    loaded = set(sys.modules)
    for prior in ("setup:X", "antigravity:X", "this:X", "subprocess:Popen", "torch.nn:Module"):
        name_part(foreign / "run", prior)
        assert exit_code(["evaluate", "run", "--num-samples", "5"]) == 2
        err = capsys.readouterr().err
        assert f"--trust {prior.split(':')[0]}" in err and "Traceback" not in err, err
    assert not marker.exists()
    assert not {"antigravity", "this", "setup"} & (set(sys.modules) - loaded)


def test_a_vouched_module_inside_the_run_directory_is_still_refused(foreign, capsys, monkeypatch):
    marker = foreign / "planted-ran"
    plant(foreign / "run", "planted", marker)
    name_part(foreign / "run", "planted:Evil")
    monkeypatch.chdir(foreign / "run")  # the run directory is the current directory
    assert exit_code(["evaluate", ".", "--num-samples", "5", "--trust", "planted"]) == 2
    assert "cannot be imported outside" in capsys.readouterr().err
    assert not marker.exists()


def test_the_python_api_refuses_an_unvouched_config_and_takes_a_vouch(foreign):
    marker = foreign / "evil-ran"
    plant(foreign, "evil", marker)
    name_part(foreign / "run", "evil:Evil")
    with pytest.raises(ConfigError, match="--trust evil"):
        load_vae("run")
    assert not marker.exists()
    with trust.vouching(["evil"]):
        _, _, vae = load_vae("run")
    assert type(vae.prior).__name__ == "Evil" and marker.exists()


def test_train_remembers_the_modules_its_command_line_names(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(FIXTURES))
    sys.modules.pop("user_parts", None)
    runs = ["--runs-dir", str(tmp_path), "--name", "mine"]
    assert main(["train", *TINY, *runs, "--guide", "user_parts:LaplaceGuide"]) == 0
    assert "trusting user_parts" in capsys.readouterr().err
    listed = trust.allow_list_path().read_text().splitlines()
    assert f"user_parts {(FIXTURES / 'user_parts.py').resolve()}" in listed, listed
    trust._vouched.clear()  # a new process: only the allow-list remembers
    assert main(["evaluate", str(tmp_path / "mine"), "--num-samples", "5", "--quiet"]) == 0
    sys.modules.pop("user_parts", None)


@pytest.mark.parametrize("kind", ["prior", "guide", "likelihood", "decoder"])
def test_torch_nn_module_as_a_part_is_a_one_line_refusal(tmp_path, foreign, kind, capsys):
    argv = ["train", *TINY, "--runs-dir", str(tmp_path), "--name", "m", f"--{kind}"]
    assert exit_code([*argv, "torch.nn:Module"]) == 2
    err = capsys.readouterr().err
    assert "Module has no forward method of its own" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "m").exists()
    name_part(foreign / "run", "torch.nn:Module", kind)
    assert exit_code(["evaluate", "run", "--num-samples", "5", "--trust", "torch"]) == 2
    assert "Module has no forward method of its own" in capsys.readouterr().err


def test_trust_takes_module_names_only(capsys):
    assert exit_code(["evaluate", "run", "--trust", "not a module"]) == 2
    assert "is not a module name" in capsys.readouterr().err


# ---------------------------------------------------------------------- exits at import
def test_a_module_that_exits_while_imported_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(FIXTURES))
    argv = ["train", *TINY, "--runs-dir", str(tmp_path), "--name", "x"]
    assert exit_code([*argv, "--prior", "exits_at_import:P"]) == 2
    err = capsys.readouterr().err
    assert "importing module 'exits_at_import' failed: it called sys.exit(3)" in err, err
    assert exit_code([*argv, "--prior", "hostile_parts:ExitsInInit"]) == 2
    assert "could not be built: it called sys.exit(4)" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    sys.modules.pop("hostile_parts", None)
