"""Data parallelism on ``torch.distributed``: several processes train one model, or share one
evaluation, as ``torchrun`` starts them.

``torchrun --nproc_per_node N -m pyro_vae train ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and a rendezvous in their environment;
:func:`init_from_environment` joins them into one process group (gloo on CPU, NCCL on CUDA).
Training follows Pyro's Horovod example (``examples/svi_horovod.py``): every process holds the
whole model, takes a disjoint shard of each minibatch, and the gradients are combined before
each optimizer step, so all processes take the same step. With N processes of B examples each
the global minibatch is G = N B, and process r's loss is scaled so that the sum over processes
is the one-process loss on those G examples::

    loss_r = (b_r / G) * (num_data / b_r) * sum_{n in shard r} -ELBO_n
           = (num_data / G) * sum_{n in shard r} -ELBO_n,        sum_r loss_r = loss(G examples)

so the summed gradient (one ``all_reduce`` of all gradients, flattened into one buffer) is
the gradient of the one-process loss on the G examples (shards may be uneven at an epoch's
end). ``DistributedDataParallel`` is not used: it hooks a module's ``forward``, and Pyro calls
``model`` and ``guide`` instead; one reduction of one buffer per step is what it would do
without overlap. Evaluation splits the images into contiguous blocks (:func:`shard_bounds`)
and gathers the per-image results (:func:`gather_rows`).

A process that dies ends the job: torchrun stops the others (they see SIGTERM), and a
collective that waits longer than ``PYRO_VAE_DIST_TIMEOUT`` seconds (default 300) fails with
:class:`DistributedError` instead of hanging.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from ..errors import ConfigError, DataFormatError, DistributedError
from ..rng import derived_seed
from .ais import AISEstimate, log_marginal_ais
from .marginal import MarginalEstimate, log_marginal

TIMEOUT_ENV = "PYRO_VAE_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 300.0
MAX_TIMEOUT_S = 30 * 24 * 3600.0
"""The longest ``PYRO_VAE_DIST_TIMEOUT`` (30 days): gloo and the TCP store keep a timeout in
integer milliseconds and nanoseconds, and overflow (or refuse it) far beyond this."""
MAX_ENV_INT = 2**31 - 1
PERMUTATION_KEY = 0x5045524D  # "PERM": the shared stream of each epoch's permutation
ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place in the job: ``rank`` of ``world_size`` (one process: 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def active(self) -> bool:
        """Several processes share the work."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Process 0: the one that writes files and prints."""
        return self.rank == 0

    @property
    def comm_device(self) -> torch.device:
        """Where tensors must be for the backend's collectives (NCCL: this process's GPU)."""
        if self.backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


SINGLE = ProcessGroup()
"""The one-process "group": every helper below is then a no-op."""


def _env_int(name: str, default: int | None = None) -> int:
    text = os.environ.get(name)
    if text is None:
        if default is None:
            raise ConfigError(f"the environment variable {name} is not set")
        return default
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 10:
        raise ConfigError(
            f"the environment variable {name}={text!r} is not an integer from 0 to {MAX_ENV_INT}"
        )
    value = int(digits)
    if value > MAX_ENV_INT:
        raise ConfigError(f"the environment variable {name}={value} is above {MAX_ENV_INT}")
    return value


def launched_distributed() -> bool:
    """Started by torchrun (or a launcher that sets the same variables) with several
    processes."""
    return "RANK" in os.environ and _env_int("WORLD_SIZE", 1) > 1


def timeout_seconds() -> float:
    """How long a collective may wait for the other processes (``PYRO_VAE_DIST_TIMEOUT``)."""
    text = os.environ.get(TIMEOUT_ENV)
    if text is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text) if text.isascii() else float("nan")
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT_S):
        raise ConfigError(
            f"{TIMEOUT_ENV}={text!r}: expected a positive number of seconds, at most "
            f"{MAX_TIMEOUT_S:.0f} (30 days)"
        )
    return value


def init_from_environment(device: str = "auto") -> ProcessGroup:
    """Join the process group torchrun describes in the environment; :data:`SINGLE` when the
    process was started alone (or as one process). ``device`` (``--device``) picks the
    backend: NCCL for CUDA, gloo for the CPU."""
    if not launched_distributed():
        return SINGLE
    rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
    local_rank = _env_int("LOCAL_RANK", 0)
    if rank >= world:
        raise ConfigError(f"RANK={rank} is not below WORLD_SIZE={world}")
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    backend = "nccl" if cuda else "gloo"
    timeout = timeout_seconds()
    if dist.is_initialized():
        return ProcessGroup(rank, world, local_rank, dist.get_backend(), timeout)
    if cuda:
        torch.cuda.set_device(local_rank % max(1, torch.cuda.device_count()))
    try:
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
    except (RuntimeError, ValueError) as exc:  # DistBackendError/DistStoreError are these
        raise DistributedError(
            f"process {rank} of {world} could not join the process group ({_first(exc)}). "
            "Check torchrun's --rdzv-endpoint / MASTER_ADDR and MASTER_PORT, and that every "
            "node can reach it."
        ) from None
    return ProcessGroup(rank, world, local_rank, backend, timeout)


def shutdown() -> None:
    """Leave the process group (at the end of a command)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def device_for(name: str, group: ProcessGroup) -> str:
    """The device of this process: with several processes, ``auto`` and ``cuda`` mean this
    node's GPU number ``LOCAL_RANK`` (one GPU per process)."""
    if group.active and (name == "cuda" or (name == "auto" and torch.cuda.is_available())):
        return f"cuda:{group.local_rank % max(1, torch.cuda.device_count())}"
    return name


def process_seed(seed: int, rank: int, world_size: int) -> int:
    """The seed of process ``rank``'s own random numbers: the run's seed alone for one process
    (so a one-process run is what it always was), else derived from the seed and the rank."""
    return seed if world_size == 1 else derived_seed(seed, rank)


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffle of (1-based) ``epoch``, the same in every process: drawn from its own
    generator seeded by the run's seed and the epoch, never from the processes' streams."""
    gen = torch.Generator().manual_seed(derived_seed(seed, PERMUTATION_KEY, epoch))
    return torch.randperm(n, generator=gen)


def shard_bounds(n: int, rank: int, world_size: int, multiple: int = 1) -> tuple[int, int]:
    """Process ``rank``'s contiguous block ``[start, stop)`` of ``n`` items: blocks as equal as
    possible whose boundaries are multiples of ``multiple`` (an estimator's batch size, so that
    batches, and the random numbers each batch draws, are the same as in one process)."""
    if not (0 <= rank < world_size) or multiple < 1:
        raise ValueError(f"bad shard: rank {rank} of {world_size}, multiple {multiple}")
    batches = math.ceil(n / multiple)
    per = math.ceil(batches / world_size)
    return min(n, rank * per * multiple), min(n, (rank + 1) * per * multiple)


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@contextmanager
def collective(group: ProcessGroup, what: str) -> Iterator[None]:
    """Turn a failed collective (a process that died, one that did not answer within the
    timeout) into a :class:`DistributedError` that says so."""
    try:
        yield
    except RuntimeError as exc:
        raise DistributedError(
            f"process {group.rank} of {group.world_size}: {what} failed: another process of "
            f"this job stopped or did not answer within {group.timeout_s:g} s "
            f"({_first(exc)}). torchrun's summary and the other processes' messages say "
            "which stopped first."
        ) from None


def sum_gradients(
    params: Iterable[torch.Tensor], group: ProcessGroup, *extra: float
) -> list[float]:
    """Sum every parameter's gradient over the processes, and the numbers ``extra`` with them
    (one ``all_reduce`` of one flat float32 buffer; a missing gradient counts as zero and is
    filled in); returns the summed ``extra``."""
    if not group.active:
        return list(extra)
    params = [p for p in params if p.requires_grad]
    device = params[0].device if params else group.comm_device
    pieces = [
        (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float() for p in params
    ]
    pieces.append(torch.tensor(extra, dtype=torch.float32, device=device))
    flat = torch.cat(pieces)
    with collective(group, "summing the gradients"):
        dist.all_reduce(flat)
    offset = 0
    for p in params:
        p.grad = flat[offset : offset + p.numel()].view_as(p).to(p.dtype)
        offset += p.numel()
    return flat[offset:].tolist()


def communicated_bytes(params: Iterable[torch.Tensor], extra: int = 1) -> int:
    """Bytes of the buffer :func:`sum_gradients` reduces each step (float32)."""
    return 4 * (sum(p.numel() for p in params if p.requires_grad) + extra)


def broadcast_module(module: torch.nn.Module, group: ProcessGroup) -> None:
    """Give every process process 0's parameters and buffers."""
    if not group.active:
        return
    with collective(group, "sharing the parameters"), torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def broadcast_number(value: float, group: ProcessGroup, what: str = "sharing a number") -> float:
    """Process 0's ``value`` in every process (so that all take the same decision on it)."""
    if not group.active:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=group.comm_device)
    with collective(group, what):
        dist.broadcast(tensor, src=0)
    return float(tensor.item())


def broadcast_text(text: str | None, group: ProcessGroup) -> str:
    """Process 0's ``text`` in every process (as bytes in a tensor: nothing is unpickled)."""
    if not group.active:
        assert text is not None
        return text
    data = (text or "").encode() if group.is_main else b""
    device = group.comm_device
    size = torch.tensor([len(data)], dtype=torch.int64, device=device)
    with collective(group, "sharing the run directory"):
        dist.broadcast(size, src=0)
        buf = torch.zeros(int(size.item()), dtype=torch.uint8, device=device)
        if group.is_main:
            buf.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        dist.broadcast(buf, src=0)
    return bytes(buf.cpu().tolist()).decode()


def gather_rows(tensors: dict[str, torch.Tensor], group: ProcessGroup) -> dict[str, torch.Tensor]:
    """Concatenate, in rank order, each process's per-item tensors (``[items, ...]``, the
    first dimension this process's items; sent as float64, returned in their own dtype).
    Every process receives the whole."""
    if not group.active:
        return tensors
    names = sorted(tensors)
    device = group.comm_device
    # an explicit width: a process with no items (more processes than batches) has [0, ...]
    columns = [
        tensors[k].double().reshape(len(tensors[k]), math.prod(tensors[k].shape[1:])) for k in names
    ]
    widths = [c.shape[1] for c in columns]
    local = torch.cat(columns, 1).to(device)
    count = torch.tensor([len(local)], dtype=torch.int64, device=device)
    counts = [torch.zeros_like(count) for _ in range(group.world_size)]
    with collective(group, "gathering the per-image results"):
        dist.all_gather(counts, count)
        longest = max(int(c.item()) for c in counts)
        padded = torch.zeros(longest, local.shape[1], dtype=torch.float64, device=device)
        padded[: len(local)] = local
        parts = [torch.empty_like(padded) for _ in range(group.world_size)]
        dist.all_gather(parts, padded)
    whole = torch.cat([p[: int(c.item())] for p, c in zip(parts, counts, strict=True)]).cpu()
    out = {}
    for name, piece in zip(names, whole.split(widths, 1), strict=True):
        out[name] = piece.reshape(len(whole), *tensors[name].shape[1:]).to(tensors[name].dtype)
    return out


def check_same_data(digest: str, source: str, group: ProcessGroup) -> None:
    """Refuse, in every process alike, a job whose processes read different data: ``digest``
    (a data file's SHA-256, and its test file's) as this process read ``source``. Each node
    reads its own copy of the file; a copy that differs from process 0's would train the
    others on other examples without a word."""
    if not group.active:
        return
    mine = torch.frombuffer(bytearray(digest.encode().ljust(160)[:160]), dtype=torch.uint8)
    device = group.comm_device
    parts = [torch.empty(160, dtype=torch.uint8, device=device) for _ in range(group.world_size)]
    with collective(group, "comparing the data files"):
        dist.all_gather(parts, mine.to(device))
    differs = [r for r, p in enumerate(parts) if not torch.equal(p.cpu(), parts[0].cpu())]
    if differs:
        raise DataFormatError(
            f"process {group.rank} of {group.world_size}: process {differs[0]} read a different "
            f"{source} than process 0 (its SHA-256 differs): give every node the same file"
        )


def barrier(group: ProcessGroup, what: str = "waiting for the other processes") -> None:
    if group.active:
        with collective(group, what):
            dist.barrier()


def sharded_log_marginal(
    model,
    guide,
    x: torch.Tensor,
    num_samples: int,
    *args,
    group: ProcessGroup = SINGLE,
    batch_size: int | None = None,
    max_rows: int = 16384,
    progress: bool = False,
    **kwargs,
) -> MarginalEstimate:
    """:func:`log_marginal` of ``x`` with the images shared among the processes: each takes a
    contiguous block whose boundaries are multiples of the batch size, and every process gets
    the per-image results of all. With ``seed=`` given, each batch of images draws from a seed
    derived from its first image's index, so the results are those of one process, whatever
    the number of processes."""
    n = len(x)
    batch = min(n, batch_size or 100)
    chunk = min(num_samples, kwargs.pop("particle_chunk", None) or max(1, max_rows // batch))
    if not group.active:
        return log_marginal(
            model,
            guide,
            x,
            num_samples,
            *args,
            batch_size=batch,
            particle_chunk=chunk,
            progress=progress,
            **kwargs,
        )
    start, stop = shard_bounds(n, group.rank, group.world_size, batch)
    fields = ("log_px", "elbo", "ess", "khat")
    if stop > start:
        part = log_marginal(
            model,
            guide,
            x[start:stop],
            num_samples,
            *args,
            batch_size=batch,
            particle_chunk=chunk,
            index_offset=start,
            progress=progress and group.is_main,
            **kwargs,
        )
        local = {k: getattr(part, k) for k in fields}
    else:  # more processes than batches: this one has nothing to do
        local = {k: torch.empty(0, dtype=torch.float64) for k in fields}
    whole = gather_rows(local, group)
    return MarginalEstimate(**{k: whole[k] for k in fields}, num_samples=num_samples)


def sharded_log_marginal_ais(
    model, guide, x: torch.Tensor, *args, group: ProcessGroup = SINGLE, **kwargs
) -> AISEstimate:
    """:func:`~pyro_vae.infer.ais.log_marginal_ais` of ``x`` with the images shared among the
    processes in contiguous blocks (each point's draws are keyed by its index, so the results
    are those of one process); every process gets the per-image results of all."""
    if not group.active:
        return log_marginal_ais(model, guide, x, *args, **kwargs)
    start, stop = shard_bounds(len(x), group.rank, group.world_size)
    progress = kwargs.pop("progress", False) and group.is_main
    if stop > start:
        part = log_marginal_ais(
            model, guide, x[start:stop], *args, index_offset=start, progress=progress, **kwargs
        )
        local = {
            "log_px": part.log_px,
            "log_weights": part.log_weights.T,  # images first
            "acceptance": part.acceptance,
            "step_size": part.step_size,
        }
    else:
        chains = kwargs.get("num_chains", 8)
        local = {k: torch.empty(0, dtype=torch.float64) for k in ("log_px", "acceptance")}
        local["step_size"] = torch.empty(0, dtype=torch.float64)
        local["log_weights"] = torch.empty(0, chains, dtype=torch.float64)
    whole = gather_rows(local, group)
    whole["log_weights"] = whole["log_weights"].T.contiguous()  # chains first again
    return AISEstimate(
        **whole,
        num_steps=kwargs.get("num_steps", 500),
        num_chains=kwargs.get("num_chains", 8),
        num_leapfrog=kwargs.get("num_leapfrog", 5),
        start=kwargs.get("start", "guide"),
    )
