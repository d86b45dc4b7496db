"""``--threads`` (issue 28, issue 30 item 5): ``auto`` takes the free cores, shared among a
torchrun launch's local processes, at least one; a number is taken as given; the environment's
``OMP_NUM_THREADS`` stands unless the option is given; the option is read without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from helpers import exit_code

from pyro_vae.app.threads import apply_threads, choose_threads


@pytest.mark.parametrize(
    ("cores", "load", "processes", "expected"),
    [
        (2, 0.0, 1, 2),  # idle: every core
        (2, 0.4, 1, 2),  # a little noise is not a busy core
        (2, 1.0, 1, 1),
        (2, 11.5, 1, 1),  # the shared machine of the issue: never below one
        (16, 3.0, 1, 13),
        (16, 0.0, 4, 4),  # torchrun --nproc_per_node 4: the cores shared
        (16, 0.0, 32, 1),
    ],
)
def test_auto_takes_the_free_cores_per_local_process(cores, load, processes, expected):
    assert choose_threads(cores, load, processes) == expected


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_number_is_taken_and_the_environment_stands_without_one(monkeypatch, restore_threads):
    assert apply_threads(1) == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert apply_threads(None) is None  # the user's environment decides
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert apply_threads(None) == choose_threads() == torch.get_num_threads()


@pytest.mark.parametrize("value", ["0", "-1", "1025", "two", "1.5"])
def test_a_bad_count_is_a_usage_error(value, capsys):
    assert exit_code(["train", "--threads", value, "--epochs", "1"]) == 2
    assert "--threads" in capsys.readouterr().err


def test_the_option_is_read_before_torch_loads():
    probe = (
        "import sys\nfrom pyro_vae.cli import main\n"
        "try:\n    main(['evaluate', '--threads', 'x', 'nowhere'])\n"
        "except SystemExit as exc:\n    print(exc.code)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout
    assert out.split() == ["2", "False"]
