"""Run files are ordinary files: their mode is 0666 less the umask, so colleagues on a shared
machine can open results and reports where the user's umask lets them (issue 30)."""

from __future__ import annotations

import os
import stat

import pytest

from pyro_vae.app import checkpoint
from pyro_vae.app.checkpoint import atomic_write_text, save_checkpoint


@pytest.fixture
def umask():
    old = os.umask(0o022)
    try:
        yield lambda mask: os.umask(mask)
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_honour_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    atomic_write_text(tmp_path / "config.json", "{}\n")
    save_checkpoint(tmp_path / "checkpoint.pt", {"epoch": 1})
    assert _mode(tmp_path / "config.json") == expected
    assert _mode(tmp_path / "checkpoint.pt") == expected


def test_the_by_path_fallback_honours_the_umask_too(tmp_path, umask, monkeypatch):
    """Where there are no *at() calls (Windows), mkstemp's 0600 is widened to the umask's."""
    monkeypatch.setattr(checkpoint, "_DIR_FD", False)
    umask(0o022)
    atomic_write_text(tmp_path / "report.md", "# r\n")
    assert _mode(tmp_path / "report.md") == 0o644
    assert checkpoint.current_umask() == 0o022
