"""Thread counts that follow the machine while a long job runs (``--threads auto``).

PyTorch's CPU kernels split each operation over OpenMP threads, and every thread waits at the
end of every operation for the slowest one. When more threads want to run than there are
cores, a waiting thread sits descheduled for a whole time slice, and a small model's step gets
many times slower: two ``digits`` trainings at 2 threads each on 2 cores run at 0.09 of their
solo speed (``experiments/bench_contention.py``). A count chosen once at start cannot know
what starts later, and the load average lags by a minute; so the governor looks again while the
job runs.

Every ``interval`` seconds (checked between steps: one clock read per call) it counts the
threads of *other* processes that are running or ready to run now: the system's runnable
count (``/proc/loadavg``, 4th field) less this process's own runnable threads
(``/proc/self/task/*/stat``). From the median ``o`` of the last ``window`` counts it sets
``threads = clamp(cores - o, 1, cores)``: alone, every core; beside another busy job, fewer;
never below one. Where ``/proc`` is missing (not Linux) it does nothing. This module does not
import torch until it sets a count (the command line imports it while reading options).
"""

from __future__ import annotations

import os
import statistics
import time
from collections import deque
from pathlib import Path

PROC = Path("/proc")


def running_threads(proc: Path = PROC) -> tuple[int, int] | None:
    """(runnable threads on the whole machine, runnable threads of this process), or None
    where ``/proc`` cannot tell."""
    try:
        fields = (proc / "loadavg").read_text().split()
        machine = int(fields[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None
    own = 0
    try:
        tasks = list((proc / "self" / "task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        # "pid (comm) S ...": the state follows the last ')' (comm may hold spaces or ')')
        state = stat[stat.rfind(")") + 2 : stat.rfind(")") + 3]
        own += state == "R"
    return machine, max(1, own)


class ThreadGovernor:
    """Sets ``torch.set_num_threads`` from the cores other processes leave free (see the
    module's docstring); :meth:`tick` between steps."""

    def __init__(
        self,
        cores: int,
        interval: float = 0.5,
        window: int = 4,
        sample=running_threads,
        clock=time.monotonic,
    ) -> None:
        self.cores = max(1, cores)
        self.interval = interval
        self.samples: deque[int] = deque(maxlen=window)
        self.sample = sample
        self.clock = clock
        self.next_look = clock() + interval
        self.changes = 0

    def others(self) -> int | None:
        """The median number of other processes' runnable threads over the window, or None
        until the window is full."""
        if len(self.samples) < (self.samples.maxlen or 1):
            return None
        return round(statistics.median(self.samples))

    def tick(self) -> None:
        """Look at the machine if ``interval`` seconds have passed; adjust the thread count
        when the window says so."""
        now = self.clock()
        if now < self.next_look:
            return
        self.next_look = now + self.interval
        counts = self.sample()
        if counts is None:
            return
        machine, own = counts
        self.samples.append(max(0, machine - own))
        others = self.others()
        if others is None:
            return
        wanted = min(self.cores, max(1, self.cores - others))
        import torch  # loaded by then; not at import: the command line reads options first

        if wanted != torch.get_num_threads():
            torch.set_num_threads(wanted)
            self.changes += 1


_governor: ThreadGovernor | None = None


def govern(cores: int | None) -> None:
    """Turn the process's governor on for ``cores`` cores (``None``: off)."""
    global _governor
    _governor = None if cores is None else ThreadGovernor(cores)


def tick() -> None:
    """Between two steps of long work: let the governor look, if one is on."""
    if _governor is not None:
        _governor.tick()


def governor() -> ThreadGovernor | None:
    """The process's governor, if on."""
    return _governor


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1
