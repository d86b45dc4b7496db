"""Provenance in every run (issue 30, item 2): each command that trains or evaluates a run adds
what produced its numbers to ``provenance.json`` (versions, command line, commit, host,
device, epoch), the report shows it, and a file there that pyro-vae did not write never stops a
command."""

from __future__ import annotations

import json
import platform
import sys

import pyro
import pytest
import torch
from helpers import tiny, train_tiny

import pyro_vae
from pyro_vae.app.provenance import FILE, read_provenance
from pyro_vae.app.runs import RunDirectory
from pyro_vae.cli import main
from pyro_vae.store.fields import RecordError
from pyro_vae.store.provenance import MAX_ENTRIES, Provenance


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("prov")
    with pytest.MonkeyPatch.context() as patch:  # what the entry records as the command line
        patch.setattr(sys, "argv", ["/some/bin/pyro-vae", "train", "--latent-dim", "2"])
        path = train_tiny(root, "r", tiny(epochs=1, latent_dim=2))
    assert main(["evaluate", str(path), "--num-samples", "3", "--quiet"]) == 0
    assert main(["train", "--resume", str(path), "--epochs", "2", "--quiet"]) == 0
    assert main(["report", str(path), "--quiet", "--no-figures"]) == 0
    return path


def test_each_command_that_computes_numbers_adds_an_entry(run):
    entries = read_provenance(RunDirectory(run)).entries
    assert [(e.command, e.epoch) for e in entries] == [("train", 0), ("evaluate", 1), ("resume", 1)]
    first = entries[0]
    assert first.pyro_vae_version == pyro_vae.__version__
    assert (first.torch_version, first.pyro_version) == (torch.__version__, pyro.__version__)
    assert first.python_version == platform.python_version() and first.device == "cpu"
    assert first.argv == "pyro-vae train --latent-dim 2" and first.host
    assert first.git_commit is None or len(first.git_commit.split("+")[0]) == 40


def test_the_report_shows_what_produced_the_numbers(run):
    text = (run / "report.md").read_text()
    assert "_frozen" not in text  # the configuration table lists declared settings only
    section = text[text.index("## Provenance") :]
    assert "| time (UTC) | command | epoch |" in section
    for command in ("train", "evaluate", "resume"):
        assert f"| {command} |" in section
    assert f"torch {torch.__version__}, Pyro {pyro.__version__}" in section


@pytest.mark.parametrize("garbage", ["not json", '{"format": 1, "entries": [{"command": 3}]}'])
def test_a_file_pyro_vae_did_not_write_is_moved_aside_never_stopping(
    run, tmp_path, garbage, capsys
):
    import shutil

    copy = tmp_path / "r"
    shutil.copytree(run, copy)
    (copy / FILE).write_text(garbage)
    assert main(["report", str(copy), "--quiet", "--no-figures"]) == 0  # said, not fatal
    assert "Not shown:" in (copy / "report.md").read_text()
    assert main(["evaluate", str(copy), "--num-samples", "3", "--quiet"]) == 0
    assert "moved to provenance.json.unreadable" in capsys.readouterr().err
    assert (copy / (FILE + ".unreadable")).read_text() == garbage
    assert [e.command for e in read_provenance(RunDirectory(copy)).entries] == ["evaluate"]


def test_a_link_in_its_place_is_moved_as_a_link_never_followed(run, tmp_path):
    import shutil

    copy = tmp_path / "r"
    shutil.copytree(run, copy)
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"format": 1, "entries": []}))
    (copy / FILE).unlink()
    (copy / FILE).symlink_to(secret)
    assert main(["evaluate", str(copy), "--num-samples", "3", "--quiet"]) == 0
    assert (copy / (FILE + ".unreadable")).is_symlink()
    assert json.loads(secret.read_text()) == {"format": 1, "entries": []}  # untouched


def test_the_record_keeps_the_last_entries_and_refuses_more():
    entry = {
        "command": "train", "argv": "x", "time": "t", "epoch": 0, "pyro_vae_version": "0",
        "git_commit": None, "pyro_version": "p", "torch_version": "t", "python_version": "3",
        "platform": "p", "host": "h", "device": "cpu",
    }  # fmt: skip
    full = Provenance.from_json({"format": 1, "entries": [entry] * MAX_ENTRIES})
    assert len(full.adding(full.entries[0]).entries) == MAX_ENTRIES
    with pytest.raises(RecordError, match="more than"):
        Provenance.from_json({"format": 1, "entries": [entry] * (MAX_ENTRIES + 1)})
    with pytest.raises(RecordError, match="newer"):
        Provenance.from_json({"format": 2, "entries": []})
