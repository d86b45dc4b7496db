"""experiments/inference_gaps.py on a tiny digits run: its tables say what the per-image values
it kept say, and a second run reuses every run and evaluation instead of recomputing them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pyro_vae.app.evaluations import load_points, read_evaluations
from pyro_vae.app.runs import RunDirectory

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "experiments" / "inference_gaps.py"
ARGS = [
    "--dataset", "digits", "--epochs", "1", "--threads", "1", "--quiet",
    "--models", "default", "full guide",
    "--images", "12", "--refine-steps", "10", "--elbo-samples", "20",
    "--ais-steps", "5", "--chains", "2", "--leapfrog", "2",
    "--is-images", "40", "--is-samples", "100", "--is-refine-steps", "20",
]  # fmt: skip


def _run(runs: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(SCRIPT), "--runs-dir", str(runs), *ARGS]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def _cells(table: str, first: str) -> list[str]:
    """The cells of the first row of ``table`` that starts with ``first``."""
    line = next(ln for ln in table.splitlines() if ln.startswith(f"| {first} |"))
    return [c.strip() for c in line.strip("|").split("|")]


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("gaps")
    result = _run(runs)
    assert result.returncode == 0, result.stderr
    return runs


def test_the_gaps_table_is_the_mean_of_the_kept_per_image_gaps(done):
    table = (done / "gaps.md").read_text()
    for name, slug in (("default", "default"), ("full guide", "full-guide")):
        run = RunDirectory(done / slug)
        (key,) = read_evaluations(run).gaps
        p = load_points(run, key).values
        assert len(p["log_px"]) == 12
        cells = _cells(table, name)
        approx, amort, total = (float(c.split(" ± ")[0]) for c in cells[4:7])
        assert approx == pytest.approx((p["log_px"] - p["refined_elbo"]).mean().item(), abs=0.006)
        assert amort == pytest.approx((p["refined_elbo"] - p["elbo"]).mean().item(), abs=0.006)
        assert total == pytest.approx(approx + amort, abs=0.011)
    assert len([ln for ln in table.splitlines() if ln.startswith("| full guide |")]) == 2
    assert (done / "inference_gaps.png").read_bytes()[:4] == b"\x89PNG"


def test_the_refine_table_counts_the_images_whose_khat_crossed(done):
    run = RunDirectory(done / "default")
    plain = load_points(run, "is-K100-first40").values
    refined = load_points(run, "is-K100-R20-first40").values
    kp, kr = plain["khat"], refined["khat"]
    text = (done / "refine.md").read_text()
    fixed = int(((kp > 0.7) & (kr <= 0.7)).sum())
    back = int(((kp <= 0.7) & (kr > 0.7)).sum())
    assert f"to k̂ ≤ 0.7: {fixed}; back (≤ to >): {back}." in text
    diff = (refined["log_px"] - plain["log_px"]).double()
    shown = float(re.search(r"\(refined − plain\): ([-+]\d+\.\d+)", text).group(1))
    assert shown == pytest.approx(diff.mean().item(), abs=6e-4)
    assert _cells(text, "images with k̂ > 0.7")[1:] == [
        str(int((kp > 0.7).sum())),
        str(int((kr > 0.7).sum())),
    ]


def test_a_second_run_reuses_every_run_and_evaluation(done):
    files = sorted(p for p in done.rglob("*") if p.is_file() and p.suffix in (".json", ".pt"))
    before = {p: p.stat().st_mtime_ns for p in files if p.name != "provenance.json"}
    again = _run(done)
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in before} == before
