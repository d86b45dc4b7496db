"""``evaluate --gaps`` (the inference gaps) and ``evaluate --refine`` (refined IS proposals)
through the command line on a tiny digits model (issue 29)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from helpers import exit_code, tiny, train_tiny

from pyro_vae.app.evaluations import load_points, read_evaluations
from pyro_vae.app.runs import RunDirectory

GAPS = ["--gaps", "--images", "12", "--steps", "10", "--chains", "4", "--num-samples", "100"]
GAPS += ["--refine-steps", "50", "--quiet"]
KEY = "gaps-R50-T10-C4-L5-first12"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("runs"), "r", tiny(epochs=2))


@pytest.fixture(scope="module")
def with_gaps(trained, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("gaps") / "g"
    shutil.copytree(trained, run)
    assert exit_code(["evaluate", str(run), *GAPS]) == 0
    return run


def test_gaps_are_kept_typed_with_per_image_values_and_add_up(with_gaps, capsys):
    g = read_evaluations(RunDirectory(with_gaps)).gaps[KEY]
    assert (g.num_examples, g.refine_steps, g.num_steps, g.num_chains) == (12, 50, 10, 4)
    # the decomposition: log p(x) - ELBO = approximation gap + amortization gap
    assert math.isclose(g.approximation_gap + g.amortization_gap, g.log_px - g.elbo, abs_tol=1e-9)
    # refinement finds a better member of the family for each image than the encoder did
    assert g.amortization_gap > 3 * g.amortization_gap_se
    points = load_points(RunDirectory(with_gaps), KEY)
    refined, elbo = points.values["refined_elbo"], points.values["elbo"]
    assert refined.shape == (12,)
    assert math.isclose(refined.double().mean().item(), g.refined_elbo, rel_tol=1e-6)
    assert (refined - elbo).mean() > 0
    assert (with_gaps / "figures" / f"{KEY}.png").stat().st_size > 1000
    # other estimates are kept beside it; an IS estimate is not a gaps record
    assert KEY not in read_evaluations(RunDirectory(with_gaps)).estimates


def test_report_and_compare_show_the_gaps(with_gaps, tmp_path, capsys):
    assert exit_code(["report", str(with_gaps), "--no-figures", "--quiet"]) == 0
    md = (with_gaps / "report.md").read_text()
    assert "the inference gaps" in md and f"figures/{KEY}.png" in md
    assert "amortization gap" in md
    # compare pairs log p(x) estimates; the gaps come after them
    assert exit_code(["evaluate", str(with_gaps), "--images", "12", "--num-samples", "50"]) == 0
    other = tmp_path / "other"
    shutil.copytree(with_gaps, other)
    capsys.readouterr()
    assert exit_code(["compare", str(with_gaps), str(other)]) == 0
    out = capsys.readouterr().out
    assert "inference gaps, nats per image" in out
    assert out.count(f"({KEY})") == 2


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--gaps", "--method", "ais"], "--gaps runs its own estimators"),
        (["--gaps", "--refine", "5"], "--gaps runs its own estimators"),
        (["--refine-steps", "5"], "for IS give --refine STEPS"),
        (["--refine", "5", "--method", "ais"], "not of AIS"),
    ],
)
def test_contradictory_options_are_refused_in_one_line(trained, argv, said, capsys):
    assert exit_code(["evaluate", str(trained), *argv, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and said in err


def test_refined_proposal_lowers_khat_and_raises_log_px_at_the_same_k(trained, tmp_path):
    """Measured on this tiny model (2 epochs, 60 images, K = 200): with q refined for 100
    steps the mean k-hat falls (about 0.70 -> 0.61 on 100 images at K = 500) and the paired
    log p(x) rises (about +0.19 ± 0.025 nats there): the encoder's q is a poorer proposal."""
    run = tmp_path / "r"
    shutil.copytree(trained, run)
    common = ["--images", "60", "--num-samples", "200", "--quiet"]
    assert exit_code(["evaluate", str(run), *common]) == 0
    assert exit_code(["evaluate", str(run), *common, "--refine", "100"]) == 0
    evaluations = read_evaluations(RunDirectory(run))
    plain, refined = (
        evaluations.estimates["is-K200-first60"],
        evaluations.estimates["is-K200-R100-first60"],
    )
    assert refined.refine_steps == 100 and plain.refine_steps is None
    assert refined.khat_mean < plain.khat_mean
    assert refined.khat_above <= plain.khat_above
    a = load_points(RunDirectory(run), "is-K200-first60").log_px.double()
    b = load_points(RunDirectory(run), "is-K200-R100-first60").log_px.double()
    d = b - a
    se = d.std().item() / math.sqrt(len(d))
    assert d.mean().item() > 3 * se, (d.mean().item(), se)
    assert refined.elbo > plain.elbo  # the refined q's own ELBO, from the same draws
