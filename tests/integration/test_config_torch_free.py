"""``pyro_vae.config`` and the options generated from it load without torch, Pyro or
matplotlib (``pyro-vae --help`` and usage errors answer at once)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "pyro", "matplotlib", "numpy")


def test_importing_the_config_and_the_options_loads_no_heavy_package():
    code = (
        "import sys, pyro_vae.config, pyro_vae.app.options\n"
        "from pyro_vae.app.options import OPTIONS, config_from_args\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules], len(OPTIONS))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, count = out.stdout.split("]")
    assert loaded == "[" and int(count) > 30
