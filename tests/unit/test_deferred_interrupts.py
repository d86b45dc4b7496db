"""A checkpoint and its epoch's metrics are written together (issue 30, item 9: after Ctrl-C,
``list`` showed one epoch fewer than the checkpoint held): a SIGINT or SIGTERM inside the block
takes effect when the block ends."""

from __future__ import annotations

import os
import signal

import pytest

from pyro_vae.app.interrupts import deferred_interrupts


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler for the test (an earlier test may have left another)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_inside_the_block_waits_for_its_end(python_sigint):
    done = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("checkpoint")
            done.append("metrics")
    assert done == ["checkpoint", "metrics"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_the_previous_handler_runs_once_after_the_block():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == []
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_quiet_block_changes_nothing():
    before = signal.getsignal(signal.SIGINT)
    with deferred_interrupts():
        pass
    assert signal.getsignal(signal.SIGINT) is before
