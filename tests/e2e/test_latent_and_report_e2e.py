"""The autoencoder baseline, interpolations and their judges, latent embeddings, the report."""

from __future__ import annotations

import json
import re

import pytest
from helpers import is_summary

from pyro_vae.cli import main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    code = main(
        [
            "run",
            "--epochs",
            "3",
            "--hidden",
            "32",
            "--latent-dim",
            "4",
            "--quiet",
            "--eval-particles",
            "2",
            "--num-samples",
            "50",
            "--runs-dir",
            str(root),
            "--name",
            "tiny",
        ]
    )
    assert code == 0
    return root / "tiny"


@pytest.mark.e2e
def test_run_writes_a_report_with_the_runs_own_numbers(tiny_run):
    md = (tiny_run / "report.md").read_text()
    ev = is_summary(tiny_run)
    base = json.loads((tiny_run / "baseline.json").read_text())
    interp = json.loads((tiny_run / "interpolation.json").read_text())
    for heading in (
        "## Summary",
        "## Configuration",
        "## Training",
        "## Test log-likelihood",
        "## Finite mixtures against the VAE",
        "## What the model learned",
    ):
        assert heading in md
    assert f"{ev['log_px']:.3f} ± {ev['log_px_se']:.3f}" in md
    assert base["best_mixture"] in md
    diff = interp["judges"]["VAE"]["vae_minus_autoencoder"]
    assert f"{abs(diff):.2f}" in md
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert set(figures) == {
        f"figures/{name}.png"
        for name in (
            "elbo_curves",
            "gmm_vs_vae",
            "reconstructions",
            "samples",
            "manifold",
            "latent_space",
            "interpolation",
        )
    }
    for src in figures:
        assert (tiny_run / src).is_file()


def test_html_report_is_self_contained(tiny_run):
    page = (tiny_run / "report.html").read_text()
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) == 7 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<table>" in page and "<script" not in page


@pytest.mark.e2e
def test_report_command_redraws_from_the_run_directory(tiny_run, capsys):
    (tiny_run / "report.html").unlink()
    (tiny_run / "figures" / "manifold.png").unlink()
    assert main(["report", str(tiny_run)]) == 0
    assert (tiny_run / "report.html").is_file() and (
        tiny_run / "figures" / "manifold.png"
    ).is_file()
    assert "report.html" in capsys.readouterr().out
