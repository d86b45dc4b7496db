"""Issue 25: AIS that is a lower bound, a sandwich that holds, diagnostics that are calibrated.

Statistical checks use fixed seeds, tolerances from standard errors, and independent
repetitions made by copying the points (each copy's draws are keyed by its own index)."""

from __future__ import annotations


def test_bdmc_imports_on_its_own_and_from_the_package():
    import subprocess
    import sys

    code = "import pyro_vae.infer.bdmc; from pyro_vae import BDMCResult, bdmc, simulate"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
