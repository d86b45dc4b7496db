"""The typed records of pyro_vae.store: every file today's writers produce reads back into a
record and writes back unchanged; a malformed or future file is a one-line refusal (exit 1)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import FIXTURES as _FIXTURES
from helpers import exit_code, tiny

from pyro_vae.app.runs import RunDirectory
from pyro_vae.cli import main
from pyro_vae.store.baseline import Baseline
from pyro_vae.store.evaluation import (
    AISEvaluation,
    BDMCEvaluation,
    Evaluations,
    ISEvaluation,
    estimate_from_json,
)
from pyro_vae.store.fields import MAX_VALUE, RecordError
from pyro_vae.store.interpolation import Interpolation
from pyro_vae.store.metrics import MetricsRecord

FIXTURES = _FIXTURES / "v1_runs"
TINY = tiny(epochs=2, eval_particles=2)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """A run with every result file today's writers produce: IS (with k-hat), AIS, BDMC,
    baseline, interpolation, metrics."""
    root = tmp_path_factory.mktemp("runs")
    argv = ["run", *TINY, "--num-samples", "60", "--runs-dir", str(root), "--name", "r"]
    assert main(argv) == 0
    run = root / "r"
    ais = ["evaluate", str(run), "--method", "ais", "--steps", "3", "--chains", "2", "--quiet"]
    assert main(ais) == 0
    bdmc = ["evaluate", str(run), "--bdmc", "4", "--steps", "3", "--chains", "2"]
    assert main([*bdmc, "--num-samples", "5", "--quiet"]) == 0
    return run


def _same(record_json: dict, raw: dict) -> None:
    """Equal values and the same key order (what is written back is what was read)."""
    assert record_json == raw
    assert list(record_json) == list(raw)


def test_every_file_the_current_version_writes_reads_back_unchanged(written):
    raw = json.loads((written / "evaluation.json").read_text())
    evaluations = Evaluations.from_json(raw)
    assert set(evaluations.estimates) == {"is-K60", "ais-T3-C2-L5"}
    assert set(evaluations.bdmc) == {"bdmc-N4-T3-C2-L5"}
    assert isinstance(evaluations.estimates["is-K60"], ISEvaluation)
    assert isinstance(evaluations.estimates["ais-T3-C2-L5"], AISEvaluation)
    assert isinstance(evaluations.bdmc["bdmc-N4-T3-C2-L5"], BDMCEvaluation)
    for section in ("estimates", "bdmc"):
        for key, entry in raw[section].items():
            record = estimate_from_json(entry)
            assert record.key == key
            _same(record.to_json(), entry)
    _same(evaluations.to_json(), raw)
    for name, cls in (("baseline.json", Baseline), ("interpolation.json", Interpolation)):
        raw = json.loads((written / name).read_text())
        assert raw["format"] == 1
        _same(cls.from_json(raw).to_json(), raw)
    for line in (written / "metrics.jsonl").read_text().splitlines():
        _same(MetricsRecord.from_json(json.loads(line)).to_json(), json.loads(line))


def test_fields_are_typed_and_named_as_the_reader_expects(written):
    ev = Evaluations.from_json(json.loads((written / "evaluation.json").read_text()))
    is_k60 = ev.estimates["is-K60"]
    assert is_k60.key == "is-K60" and is_k60.num_samples == 60
    assert is_k60.khat_above is not None and 0 <= is_k60.khat_above <= is_k60.num_examples
    assert ev.headline()[0] == "ais-T3-C2-L5"  # any AIS above any importance sampling
    assert ev.largest_is() is is_k60
    base = Baseline.from_json(json.loads((written / "baseline.json").read_text()))
    assert base.best.model == base.best_mixture
    assert base.vae.log_px == pytest.approx(is_k60.log_px)
    metrics = RunDirectory(written).read_metrics()
    assert [m.epoch for m in metrics] == [1, 2] and all(m.steps for m in metrics)


@pytest.mark.parametrize("name", ["v1-default", "v1-mog-flow", "v1-vamp-gauss"])
def test_version_0_1_evaluations_read_as_their_importance_sampling_entry(name):
    raw = json.loads((FIXTURES / name / "evaluation.json").read_text())
    evaluations = Evaluations.from_json(raw)
    (key,) = evaluations.estimates
    assert evaluations.legacy == {key} and key == f"is-K{raw['num_samples']}"
    entry = evaluations.estimates[key]
    assert entry.khat_above == raw["khat_above_0.7"] and entry.log_px == raw["log_px"]
    for line in (FIXTURES / name / "metrics.jsonl").read_text().splitlines():
        assert MetricsRecord.from_json(json.loads(line)).epoch >= 1


@pytest.mark.parametrize(
    "cls, value, words",
    [
        (ISEvaluation, {"num_samples": 5, "num_examples": 3}, "log_px is missing"),
        (ISEvaluation, {"num_samples": 5, "num_examples": 3, "log_px": True}, "log_px must be"),
        (ISEvaluation, {"num_samples": 0, "num_examples": 3, "log_px": 1.0}, "num_samples"),
        (
            ISEvaluation,
            {"num_samples": 5, "num_examples": 3, "log_px": 1.0, "khat_above_0.7": -1},
            "khat_above_0.7 must be an integer from 0",
        ),
        (
            ISEvaluation,
            {"method": "ais", "num_samples": 5, "num_examples": 3, "log_px": 1.0},
            "'is'",
        ),
        (MetricsRecord, [1, 2], "not a metrics record"),
        (MetricsRecord, {"epoch": 1, "train_objective": 1, "val_elbo": 1, "format": 9}, "format"),
        (Interpolation, {"pairs": 2, "classes": [1], "frames": "x", "judges": {}}, "classes"),
        (Interpolation, {"pairs": 2, "classes": [1, 2], "frames": "x", "judges": {"V": 3}}, "V"),
    ],
)
def test_a_malformed_record_says_which_field_and_why(cls, value, words):
    with pytest.raises(RecordError, match=words) as info:
        cls.from_json(value)
    assert "\n" not in str(info.value)


def _baseline(written: Path) -> dict:
    return json.loads((written / "baseline.json").read_text())


@pytest.mark.parametrize(
    "name, edit, words",
    [
        ("baseline.json", lambda b: {**b, "best_mixture": "Mixture(K=7)"}, "names none"),
        ("baseline.json", lambda b: {**b, "format": 2}, "format 2"),
        (
            "baseline.json",
            lambda b: {**b, "mixtures": [{**b["mixtures"][0], "num_parameters": "many"}]},
            r"mixtures\[0\]: num_parameters",
        ),
        ("baseline.json", lambda b: {**b, "vae_minus_best_mixture": {"mean": 1.0}}, "se"),
        ("interpolation.json", lambda i: {**i, "classes": ["2", "9"]}, "classes"),
        ("interpolation.json", lambda i: {**i, "plotted_judge": "nobody"}, "plotted_judge"),
        ("evaluation.json", lambda e: {**e, "format": 3}, "format 3"),
    ],
)
def test_the_report_refuses_a_malformed_result_file_in_one_line(
    written, tmp_path, capsys, name, edit, words
):
    run = tmp_path / "r"
    shutil.copytree(written, run)
    (run / name).write_text(json.dumps(edit(json.loads((run / name).read_text()))))
    assert exit_code(["report", str(run), "--no-figures"]) == 1
    err = capsys.readouterr().err
    assert name in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert re.search(words, err), err


def test_the_bounds_are_float32s_and_the_store_imports_no_torch():
    assert MAX_VALUE == float(torch.finfo(torch.float32).max)
    code = (
        "import sys, pyro_vae.store.evaluation, pyro_vae.store.baseline, "
        "pyro_vae.store.metrics, pyro_vae.store.interpolation; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
