"""The trust rule's two remaining ways around it (issue 24, fresh campaign): a module vouched
for by name reached through a link in the current directory, and package metadata
(``*.dist-info``, ``*.egg-info``) in the current directory or the run taken for an installed
package whose entry points name trusted code. Each is refused with the one-line message
(exit status 2) before anything is imported: every planted module writes a marker file when
imported, and the marker must not exist."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, exit_code, tiny, train_tiny

from pyro_vae.app import trust
from pyro_vae.config.names import entry_points, installed_path, part_names

TINY = tiny(eval_particles=2)
EVALUATE = ["evaluate", "run", "--num-samples", "5", "--quiet"]
# a class a run's config may name: the default prior itself, so that the checkpoint fits
GOOD_PART = (
    "from pyro_vae.model.priors import MixtureOfGaussiansPrior\n"
    "class Evil(MixtureOfGaussiansPrior):\n    pass\n"
)
PLANTED = ("userparts", "userpkg", "userns", "userns.parts", "evil", "antigravity")
BY_NAME = "vouched for by name, which does not cover a file in the current directory"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("runs"), "r", TINY)


@pytest.fixture
def download(tmp_path, trained, monkeypatch) -> Path:
    """A downloaded folder, the current directory: ``run/`` beside whatever it brings."""
    folder = tmp_path / "dl"
    shutil.copytree(trained, folder / "run")
    monkeypatch.chdir(folder)
    yield folder
    for name in PLANTED:
        sys.modules.pop(name, None)


def plant(path: Path, marker: Path) -> None:
    """A module (or package ``__init__``) at ``path`` that leaves ``marker`` when imported."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"open({str(marker)!r}, 'a').close()\n" + GOOD_PART)


def name_part(run: Path, prior: str) -> None:
    config = json.loads((run / "config.json").read_text())
    config["model"]["prior"] = prior
    config["model"]["prior_kwargs"] = {}
    (run / "config.json").write_text(json.dumps(config))


def allow(text: str) -> None:
    trust.allow_list_path().parent.mkdir(parents=True, exist_ok=True)
    trust.allow_list_path().write_text(text)


def refused(capsys, *needles: str) -> str:
    """The one-line refusal on stderr, holding each of ``needles``."""
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "is refused" in err and all(n in err for n in needles), err
    return err


def dist_info(where: Path, entry: str, egg: bool = False) -> None:
    """Package metadata in ``where``: what ``importlib.metadata`` takes for an installed
    package publishing ``entry`` under pyro-vae's entry-point group."""
    meta = where / ("evil.egg-info" if egg else "evil-1.0.dist-info")
    meta.mkdir(parents=True)
    head = "Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n"
    (meta / ("PKG-INFO" if egg else "METADATA")).write_text(head)
    (meta / "entry_points.txt").write_text(f"[pyro_vae.parts]\n{entry}\n")


# ------------------------------------------------------- a vouch by name and links in the cwd
@pytest.mark.parametrize("how", ["allow-list", "environment"])
def test_a_link_in_the_current_directory_into_a_subfolder_is_not_covered_by_name(
    download, how, capsys, monkeypatch
):
    """``userparts.py -> .sub/userparts.py``: its resolved parent is not the current directory,
    but the import system finds it there."""
    marker = download / "ran"
    plant(download / ".sub" / "userparts.py", marker)
    (download / "userparts.py").symlink_to(Path(".sub") / "userparts.py")
    name_part(download / "run", "userparts:Evil")
    if how == "environment":
        monkeypatch.setenv(trust.ENV_VAR, "userparts")
    else:
        allow("userparts\n")
    assert exit_code(EVALUATE) == 2
    refused(capsys, BY_NAME, f"{(download / '.sub' / 'userparts.py').resolve()}")
    assert not marker.exists()


@pytest.mark.parametrize("namespace", [False, True], ids=["package", "namespace-package"])
def test_a_linked_package_directory_in_the_current_directory_is_not_covered_by_name(
    download, namespace, capsys
):
    marker = download / "ran"
    target = download / ".sub" / "userpkg"
    plant(target / ("parts.py" if namespace else "__init__.py"), marker)
    (download / "userpkg").symlink_to(Path(".sub") / "userpkg", target_is_directory=True)
    name_part(download / "run", "userpkg.parts:Evil" if namespace else "userpkg:Evil")
    allow("userpkg\n")
    assert exit_code(EVALUATE) == 2
    refused(capsys, BY_NAME)
    assert not marker.exists()
    sys.modules.pop("userpkg.parts", None)


def test_a_link_to_a_file_outside_is_in_the_current_directory_but_a_file_vouch_matches(
    download, tmp_path, capsys
):
    """A link in the current directory to the user's own file elsewhere: a vouch by name does
    not cover it (it is found in the current directory), a vouch for that file does (file
    vouches are matched against the resolved location)."""
    project = tmp_path / "project"
    marker = tmp_path / "mine-ran"
    plant(project / "userparts.py", marker)
    (download / "userparts.py").symlink_to(project / "userparts.py")
    name_part(download / "run", "userparts:Evil")
    allow("userparts\n")
    assert exit_code(EVALUATE) == 2
    refused(capsys, BY_NAME, f"'userparts {(project / 'userparts.py').resolve()}'")
    assert not marker.exists()
    allow(f"userparts {(project / 'userparts.py').resolve()}\n")
    assert exit_code(EVALUATE) == 0
    assert marker.exists()


def test_a_vouch_by_name_still_covers_the_users_path_through_links(download, tmp_path, monkeypatch):
    """Links on the user's own path (a linked path entry, a linked file in it) are not the
    current directory: a vouch by name covers the module found there."""
    real = tmp_path / "src"
    marker = tmp_path / "mine-ran"
    plant(real / "userparts_impl.py", marker)
    (real / "userparts.py").symlink_to(real / "userparts_impl.py")
    (tmp_path / "lib").symlink_to(real, target_is_directory=True)
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    name_part(download / "run", "userparts:Evil")
    allow("userparts\n")
    assert not trust.in_current_directory("userparts")
    assert exit_code(EVALUATE) == 0
    assert marker.exists()


def test_in_current_directory_judges_where_the_module_is_found(download, monkeypatch):
    """However the current directory is spelled on ``sys.path``, and wherever a link found
    there points, a module found there is in the current directory."""
    (download / ".sub").mkdir()
    (download / ".sub" / "target.py").write_text("")
    (download / "userparts.py").symlink_to(Path(".sub") / "target.py")
    elsewhere = [p for p in sys.path if p not in ("", ".") and Path(p).resolve() != download]
    for entry in ("", ".", str(download), str(download / "run" / "..")):
        with monkeypatch.context() as m:
            m.setattr(sys, "path", [entry, *elsewhere])
            importlib.invalidate_caches()
            assert trust.in_current_directory("userparts"), entry
            target = (download / ".sub" / "target.py").resolve()
            assert trust.location_of("userparts") == str(target)
    monkeypatch.setattr(sys, "path", elsewhere)
    assert not trust.in_current_directory("userparts")  # not found at all
    assert not trust.in_current_directory("json")


# ------------------------------------------------------- package metadata in the cwd or the run
@pytest.mark.parametrize(
    "prior,egg",
    [("evil:Evil", False), ("evil:Evil", True), ("evilp", False)],
    ids=["import-path", "egg-info", "short-name"],
)
def test_package_metadata_in_the_current_directory_is_not_an_installed_part(
    download, prior, egg, capsys
):
    marker = download / "ran"
    plant(download / "evil.py", marker)
    dist_info(download, "prior.evilp = evil:Evil", egg=egg)
    name_part(download / "run", prior)
    for command in (EVALUATE, ["figures", "run", "--quiet"], ["train", "--resume", "run"]):
        assert exit_code(command) == 2, command
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        if prior == "evilp":
            assert "'evilp' is not one of" in err, err
        else:
            assert "module 'evil' is not built in, not an installed part" in err, err
        assert not marker.exists()


def test_package_metadata_cannot_make_a_standard_library_module_trusted(download, capsys):
    """``antigravity``'s import opens a web browser: a download's entry point naming it does
    not make the run's ``antigravity:X`` an installed part's module."""
    dist_info(download, "prior.x = antigravity:X")
    name_part(download / "run", "antigravity:X")
    had = "antigravity" in sys.modules
    assert exit_code(EVALUATE) == 2
    refused(capsys, "--trust antigravity")
    assert had or "antigravity" not in sys.modules


def test_package_metadata_inside_the_run_is_not_an_installed_part(download, capsys, monkeypatch):
    marker = download / "ran"
    plant(download / "run" / "evil.py", marker)
    dist_info(download / "run", "prior.evilp = evil:Evil")
    name_part(download / "run", "evil:Evil")
    monkeypatch.chdir(download / "run")
    monkeypatch.syspath_prepend("")  # python -m: the current directory (the run) comes first
    assert exit_code(["evaluate", ".", "--num-samples", "5", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not marker.exists()


@pytest.mark.parametrize("entry", ["", ".", "CWD"])
def test_entry_points_skip_the_current_directory_however_spelled(download, entry, monkeypatch):
    dist_info(download, "prior.evilp = evil:Evil")
    monkeypatch.syspath_prepend(str(download) if entry == "CWD" else entry)
    assert "evilp" not in entry_points("prior") and "evilp" not in part_names("prior")
    assert str(download) not in installed_path() and "" not in installed_path()


def test_an_installed_entry_point_still_names_a_trusted_part(download, tmp_path, monkeypatch):
    """Package metadata on the user's path (site-packages, PYTHONPATH) is an installed
    package: its short name resolves and a run naming its module is not refused."""
    site = tmp_path / "site"
    marker = tmp_path / "installed-ran"
    plant(site / "evil.py", marker)
    dist_info(site, "prior.evilp = evil:Evil")
    monkeypatch.syspath_prepend(str(site))
    assert "evilp" in entry_points("prior") and "evilp" in part_names("prior")
    name_part(download / "run", "evil:Evil")
    assert exit_code(EVALUATE) == 0
    assert marker.exists()
    sys.modules.pop("evil", None)
    marker.unlink()
    name_part(download / "run", "evilp")
    assert exit_code(EVALUATE) == 0
    assert marker.exists()


# ------------------------------------------------------- as a user runs it: python -m pyro_vae
@pytest.mark.parametrize("attack", ["symlink", "dist-info"])
def test_python_m_refuses_both_before_importing(download, attack):
    """``python -m`` puts the current directory first on ``sys.path`` itself."""
    marker = download / "ran"
    if attack == "symlink":
        plant(download / ".sub" / "userparts.py", marker)
        (download / "userparts.py").symlink_to(Path(".sub") / "userparts.py")
        name_part(download / "run", "userparts:Evil")
        allow("userparts\n")
    else:
        plant(download / "evil.py", marker)
        dist_info(download, "prior.evilp = evil:Evil")
        name_part(download / "run", "evil:Evil")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "pyro_vae", *EVALUATE],
        capture_output=True,
        text=True,
        cwd=download,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert "is refused" in proc.stderr and not marker.exists()
