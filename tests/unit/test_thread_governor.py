"""The ``--threads auto`` governor (issue 28, "throughput collapses when the machine is
shared"): it follows the cores other processes leave free while a job runs, from the median of
a window of looks, never below one thread nor above the cores it was given."""

from __future__ import annotations

import pytest
import torch

from pyro_vae.app.threads import apply_threads
from pyro_vae.infer import thread_governor
from pyro_vae.infer.thread_governor import ThreadGovernor, running_threads


class FakeMachine:
    """A clock the test advances and a /proc that reports what the test says."""

    def __init__(self) -> None:
        self.now = 0.0
        self.machine, self.own = 1, 1
        self.looks = 0

    def clock(self) -> float:
        return self.now

    def sample(self) -> tuple[int, int]:
        self.looks += 1
        return self.machine, self.own


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
    thread_governor.govern(None)


def run_looks(gov: ThreadGovernor, fake: FakeMachine, looks: int) -> None:
    for _ in range(looks):
        fake.now += gov.interval
        gov.tick()


def test_alone_it_takes_every_core_and_beside_busy_work_fewer(restore_threads):
    fake = FakeMachine()
    gov = ThreadGovernor(4, sample=fake.sample, clock=fake.clock)
    torch.set_num_threads(1)
    fake.machine, fake.own = 3, 3  # only this process's threads are runnable
    run_looks(gov, fake, 4)
    assert torch.get_num_threads() == 4
    fake.machine, fake.own = 7, 4  # three threads of other processes want cores
    run_looks(gov, fake, 4)
    assert torch.get_num_threads() == 1
    fake.machine, fake.own = 30, 1  # far more than the cores: never below one
    run_looks(gov, fake, 4)
    assert torch.get_num_threads() == 1
    fake.machine, fake.own = 2, 1  # one other: the rest
    run_looks(gov, fake, 4)
    assert torch.get_num_threads() == 3


def test_it_waits_for_a_full_window_and_a_spike_does_not_move_it(restore_threads):
    fake = FakeMachine()
    gov = ThreadGovernor(2, window=5, sample=fake.sample, clock=fake.clock)
    torch.set_num_threads(2)
    fake.machine, fake.own = 9, 1  # busy, but only four looks: no decision yet
    run_looks(gov, fake, 4)
    assert torch.get_num_threads() == 2 and gov.others() is None
    fake.machine = 1  # idle again: the window's median is idle after one spike...
    gov.samples.clear()
    for machine in (1, 1, 9, 1, 1):  # one look caught a burst of other work
        fake.machine = machine
        run_looks(gov, fake, 1)
    assert gov.others() == 0 and torch.get_num_threads() == 2 and gov.changes == 0


def test_it_looks_only_every_interval(restore_threads):
    fake = FakeMachine()
    gov = ThreadGovernor(2, interval=0.5, sample=fake.sample, clock=fake.clock)
    for _ in range(1000):  # a thousand steps within the first half second
        gov.tick()
    assert fake.looks == 0
    fake.now = 0.6
    gov.tick()
    gov.tick()
    assert fake.looks == 1


def write_proc(root, loadavg: str, states: list[str]) -> None:
    (root / "self" / "task").mkdir(parents=True)
    (root / "loadavg").write_text(loadavg)
    for i, state in enumerate(states):
        (root / "self" / "task" / str(100 + i)).mkdir()
        # a thread name holding ") R " must not be read as the state
        comm = "(py) R x)" if i == 0 else "(pt_main_thread)"
        (root / "self" / "task" / str(100 + i) / "stat").write_text(f"{100 + i} {comm} {state} 1 2")


def test_runnable_threads_are_read_from_proc(tmp_path):
    write_proc(tmp_path, "0.52 0.58 0.59 5/612 4242\n", ["S", "R", "R", "S"])
    assert running_threads(tmp_path) == (5, 2)
    assert running_threads(tmp_path / "missing") is None
    bad = tmp_path / "bad"
    write_proc(bad, "garbage\n", ["R"])
    assert running_threads(bad) is None


def test_the_real_proc_of_this_machine():
    counts = running_threads()
    if counts is None:
        pytest.skip("no /proc here")
    machine, own = counts
    assert own >= 1 and machine >= 1  # this thread is running while it reads


def test_auto_turns_the_governor_on_and_a_number_turns_it_off(monkeypatch, restore_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    apply_threads("auto")
    gov = thread_governor.governor()
    assert gov is not None and gov.cores >= 1
    apply_threads(1)
    assert thread_governor.governor() is None and torch.get_num_threads() == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "64")  # torchrun: a process's share of the cores
    apply_threads("auto")
    assert thread_governor.governor().cores == 1
