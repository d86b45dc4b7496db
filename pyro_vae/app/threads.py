"""How many threads PyTorch computes with (``--threads``).

PyTorch's CPU kernels run on OpenMP threads, one per core by default, and a waiting OpenMP
thread spins. On a machine other work already keeps busy, those threads wait for cores and a
small model's step gets many times slower (measured on 2 cores with a load average of 11: a
``digits`` epoch 13.3 s with 2 threads, 1.1 s with 1). ``auto`` therefore takes the cores this
process may use (``os.sched_getaffinity``), less the work already running (the 1-minute load
average), shared among the processes of a torchrun launch on this machine
(``LOCAL_WORLD_SIZE``), and at least one: on an idle machine every core, on a busy one fewer.
A number is taken as it is; ``OMP_NUM_THREADS`` set in the environment is the user's choice and
stands unless ``--threads`` is given.

The load average lags by a minute, so two jobs started together both see an idle machine; with
``auto`` a :class:`~pyro_vae.infer.thread_governor.ThreadGovernor` therefore looks again every
half second while training runs and follows the cores other processes leave free."""

from __future__ import annotations

import math
import os

from ..infer.thread_governor import govern, usable_cores

AUTO = "auto"


def _local_processes() -> int:
    """The processes of a torchrun launch on this machine (1 outside torchrun)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    except ValueError:
        return 1


def choose_threads(
    cores: int | None = None, load: float | None = None, processes: int | None = None
) -> int:
    """The ``auto`` number of threads: free cores per local process, at least 1.
    ``free = cores - load`` rounded to the nearest integer (a load just above an integer is
    noise, not a busy core)."""
    cores = usable_cores() if cores is None else cores
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
    if processes is None:
        processes = _local_processes()
    free = math.floor(cores - load + 0.5)
    return max(1, min(cores, free) // max(1, processes))


def apply_threads(requested: int | str | None) -> int | None:
    """Set PyTorch's intra-op threads for ``requested`` (a number, ``auto`` or ``None``:
    ``auto`` unless ``OMP_NUM_THREADS`` is set). Returns the number set (``None``: left to the
    environment)."""
    if requested is None:
        if os.environ.get("OMP_NUM_THREADS"):
            return None
        requested = AUTO
    n = choose_threads() if requested == AUTO else int(requested)
    govern(max(1, usable_cores() // _local_processes()) if requested == AUTO else None)
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
