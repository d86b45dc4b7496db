"""Every crafted file and argument of issue 13's "tracebacks instead of messages" list gives one
clear message and exit status 1 or 2, never a traceback."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers import exit_code as _exit_code
from helpers import tiny, train_tiny

from pyro_vae.app import checkpoint as checkpoint_module
from pyro_vae.app.console import print_evaluation
from pyro_vae.store.evaluation import ISEvaluation

TINY = tiny(epochs=2)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("base"), "base", TINY)


def _edit_checkpoint(fn: Callable[[dict], dict | None]) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        path = run / "checkpoint.pt"
        state = torch.load(path, weights_only=True)
        torch.save(fn(state) or state, path)

    return edit


def _edit_config(section: str, key: str, value) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        cfg = json.loads((run / "config.json").read_text())
        cfg[section][key] = value
        (run / "config.json").write_text(json.dumps(cfg))

    return edit


def _set(key, value):
    def fn(state):
        state[key] = value

    return fn


def _nan_weights(state):
    state["model"] = {k: torch.full_like(v, float("nan")) for k, v in state["model"].items()}


def _misfit_layer(state):
    key = next(iter(state["model"]))
    state["model"][key] = torch.zeros(7, 7)


def _history_unknown_keys(state):
    state["history"][0]["bogus"] = 1


def _metrics_line_a_list(run: Path) -> None:
    with open(run / "metrics.jsonl", "a") as f:
        f.write("[1, 2]\n")


RESUME = ["train", "--resume", "{run}", "--epochs", "3", "--quiet"]
EVALUATE = ["evaluate", "{run}", "--num-samples", "50", "--quiet"]
FIGURES = ["figures", "{run}"]
REPORT = ["report", "{run}", "--no-figures"]

CRAFTED = [
    ("checkpoint {format: 1}", _edit_checkpoint(lambda s: {"format": 1}), RESUME, 1, "data_dim"),
    ("checkpoint {format: 1}", _edit_checkpoint(lambda s: {"format": 1}), EVALUATE, 1, "data_dim"),
    ("data_dim 'abc'", _edit_checkpoint(_set("data_dim", "abc")), FIGURES, 1, "data_dim"),
    ("data_dim 10**9", _edit_checkpoint(_set("data_dim", 10**9)), RESUME, 1, "data_dim"),
    ("rng 'garbage'", _edit_checkpoint(_set("rng", "garbage")), RESUME, 1, "does not match"),
    ("history unknown keys", _edit_checkpoint(_history_unknown_keys), RESUME, 1, "does not match"),
    ("all-NaN weights", _edit_checkpoint(_nan_weights), EVALUATE, 1, "NaN or infinite"),
    ("all-NaN weights", _edit_checkpoint(_nan_weights), FIGURES, 1, "NaN or infinite"),
    ("all-NaN weights", _edit_checkpoint(_nan_weights), RESUME, 1, "NaN or infinite"),
    ("layers do not fit", _edit_checkpoint(_misfit_layer), EVALUATE, 1, "has shape (7, 7)"),
    ("config dataset a list", _edit_config("data", "dataset", ["digits"]), RESUME, 2, "dataset"),
    ("config prior {}", _edit_config("model", "prior", {}), EVALUATE, 2, "prior must be"),
    ("config particles '3'", _edit_config("train", "particles", "3"), RESUME, 2, "particles"),
    ("config seed 2**70", _edit_config("train", "seed", 2**70), RESUME, 2, "seed must be"),
    ("config seed -1", _edit_config("train", "seed", -1), EVALUATE, 2, "seed must be"),
    ("config device cuda:abc", _edit_config("train", "device", "cuda:abc"), RESUME, 2, "device"),
    ("metrics line a list", _metrics_line_a_list, FIGURES, 1, "not a metrics record"),
    ("metrics line a list", _metrics_line_a_list, REPORT, 1, "metrics.jsonl:3"),
]


@pytest.mark.parametrize(
    "what, edit, command, code, words",
    CRAFTED,
    ids=[f"{c[0]}-{c[2][0]}" for c in CRAFTED],
)
def test_crafted_run_files_give_a_message(
    tmp_path, base_run, capsys, what, edit, command, code, words
):
    run = tmp_path / "r"
    shutil.copytree(base_run, run)
    edit(run)
    capsys.readouterr()
    assert _exit_code([a.format(run=run) for a in command]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("pyro-vae")
    assert words in err


def _full_disk_torch_save(*args, **kwargs):
    raise RuntimeError("[enforce fail at inline_container.cc:595] . unexpected pos 64 vs 0")


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _refuse_mkdir(*args, **kwargs):
    raise PermissionError(errno.EACCES, "Permission denied", str(args[0]))


ARGUMENTS = [
    ("--seed -1", ["--seed", "-1"], None, 2, "--seed: expected an integer >= 0"),
    ("--device cuda:abc", ["--device", "cuda:abc"], None, 2, "cuda:abc"),
    ("300-character --name", ["--name", "n" * 300], None, 1, "File name too long"),
    ("read-only --runs-dir", [], ("os.mkdir", _refuse_mkdir), 1, "Permission denied"),
    ("full disk: checkpoint", [], ("torch.save", _full_disk_torch_save), 1, "checkpoint.pt"),
    ("ENOSPC: checkpoint", [], ("torch.save", _enospc), 1, "No space left on device"),
]


@pytest.mark.parametrize("what, args, patch, code, words", ARGUMENTS, ids=[a[0] for a in ARGUMENTS])
def test_bad_arguments_and_full_disks_give_a_message(
    tmp_path, capsys, monkeypatch, what, args, patch, code, words
):
    if patch is not None:
        module, name = patch[0].split(".")
        monkeypatch.setattr({"os": os, "torch": torch}[module], name, patch[1])
    runs = tmp_path / "runs"
    assert _exit_code(["train", *TINY, "--runs-dir", str(runs), *args]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and words in err
    if code == 1 and "--name" not in args:
        assert "Check that path" in err  # the path and what to do


def test_a_runs_dir_that_is_a_file_is_named_as_such(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert _exit_code(["train", *TINY, "--runs-dir", str(tmp_path / "f")]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


def test_a_full_disk_during_the_report_is_a_message(tmp_path, base_run, capsys, monkeypatch):
    run = tmp_path / "r"
    shutil.copytree(base_run, run)
    monkeypatch.setattr(checkpoint_module.os, "fsync", _enospc)
    assert _exit_code(["report", str(run), "--no-figures"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "report.md: No space left on device" in err
    assert not list(run.glob(".report*.tmp"))  # the temporary file went with the failure


def test_an_evaluation_with_every_diagnostic_missing_still_prints(capsys):
    ev = {
        "split": "test",
        "num_samples": 1000,
        "num_examples": 300,
        "log_px": -8.9e8,
        "log_px_se": None,
        "log_px_mc_se": None,
        "elbo": None,
        "elbo_se": None,
        "gap": None,
        "bits_per_dim": None,
        "ess_median": None,
        "khat_max": None,
        "khat_above_0.7": 0,
    }
    print_evaluation(ISEvaluation.from_json(ev))
    out = capsys.readouterr().out
    assert "-890000000.000 ± n/a" in out and "(max n/a)" in out
    ev["khat_above_0.7"] = 300
    print_evaluation(ISEvaluation.from_json(ev))
    assert "300 of 300 images (max n/a)" in capsys.readouterr().out
