"""Every long phase of `pyro-vae run` shows itself on stderr (training, importance sampling,
mixture EM, the autoencoder, each figure, t-SNE), the run directory first; --quiet silences it."""

import pytest

from pyro_vae.cli import main

SMALL = ["--epochs", "2", "--hidden", "32", "--latent-dim", "4", "--eval-particles", "2"]
SMALL += ["--num-samples", "50", "--baseline-components", "1", "3"]


@pytest.mark.e2e
def test_run_shows_each_phase_and_the_run_directory_first(tmp_path, capsys):
    assert main(["run", *SMALL, "--runs-dir", str(tmp_path), "--name", "p"]) == 0
    err = capsys.readouterr().err
    start = err.index(f"run directory: {tmp_path / 'p'}\n")
    phases = [
        "training digits",
        "EM, K=1",
        "EM, K=3",
        "training autoencoder",
        "figures: elbo_curves.png",
        "figures: manifold.png",
        "figures: latent_space.png (t-SNE of 300 posterior means)",
        "figures: interpolation.png",
    ]
    for phase in phases:
        assert phase in err, phase
        assert start < err.index(phase), phase  # the directory is named before any work


@pytest.mark.e2e
def test_quiet_run_and_figures_print_nothing_on_stderr(tmp_path, capsys):
    args = ["--runs-dir", str(tmp_path), "--name", "q", "--quiet"]
    assert main(["run", *SMALL, *args]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and f"run directory: {tmp_path / 'q'}" in captured.out
    assert main(["figures", str(tmp_path / "q"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["figures", str(tmp_path / "q")]) == 0
    assert "figures: latent_space.png (t-SNE" in capsys.readouterr().err
