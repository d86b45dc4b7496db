"""How much memory a run will need, estimated before anything is allocated, and how much there is.

The model is counted from a copy built on PyTorch's ``meta`` device (shapes, no storage). With
4 bytes a number (float32), P parameters, a batch of B examples, S guide samples per example
(``particles``), and A_enc, A_dec the numbers one example's encoder and one guide sample's
decoder/prior/likelihood produce (the output widths of their layers, read off the first
dimension of each weight matrix, plus the data and z):

* parameters: weights, gradients and Adam's two moments, 16 P bytes;
* one training step: every layer's output kept for the backward pass, its activation and the
  gradient of both, about 3 numbers a unit: 12 B (A_enc + S A_dec) bytes;
* the validation ELBO: chunks of up to 1,000 examples with E = ``eval_particles`` samples each,
  no gradients (2 numbers a unit): 8 min(N_val, 1000) (A_enc + E A_dec) bytes;
* the importance-sampled log p(x) (``num_samples`` K): passes of up to 16,384 (sample, image)
  pairs, 8 x 16,384 (A_enc + A_dec) bytes, and the K log-weights of each batch of up to 100 images
  kept in float32 and float64 and sorted for Pareto k-hat: 36 K min(N_test, 100) bytes;
* the data: the training and validation tensors in float32, 4 (N_train + N_val) D bytes.

The need is the parameters plus the data plus the largest of the three passes (they run one at
a time). For MLPs on ``digits`` it is 0.7 to 1.6 times the measured peak of an epoch
(``experiments/memory_estimate.py``); for a part whose activations are not proportional to its
weights' output widths (convolutions) it is a lower bound. Its purpose is to refuse sizes that
cannot fit (``--latent-dim 1000000``) with the numbers in the message, before the kernel kills
the process at an arbitrary moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import InsufficientMemoryError

BYTES = 4
TRAIN_FACTOR = 3
EVAL_FACTOR = 2
HELDOUT_CHUNK = 1000
MARGINAL_ROWS = 16384
MARGINAL_BATCH = 100
LOG_WEIGHT_BYTES = 4 + 8 + 8 + 8 + 8
"""Per (sample, image) pair: the float32 chunk, the float64 copy, its shifted copy, the sort
and the squared weights of the effective sample size."""


def output_width(module: nn.Module | None) -> int:
    """Numbers a module produces per input row: the sum of its weight matrices' first
    dimensions (a ``Linear``'s ``out_features``), except in submodules that declare their own
    ``activation_width`` (a convolutional body: channels times pixels per stage), counted as
    declared."""
    if not isinstance(module, nn.Module):
        return 0
    total, counted = 0, set()
    for sub in module.modules():
        width = getattr(sub, "activation_width", None)
        if isinstance(width, int) and not any(id(p) in counted for p in sub.parameters()):
            total += width
            counted.update(id(p) for p in sub.parameters())
    return total + sum(
        p.shape[0] for p in module.parameters() if p.dim() >= 2 and id(p) not in counted
    )


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclass
class MemoryEstimate:
    """Bytes each part of a run needs (see the module's notes); ``options`` names what sets
    each part, for the message."""

    parts: dict[str, int] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    fixed: tuple[str, ...] = ("parameters", "data")
    """The parts held throughout; the others are passes that run one at a time."""

    @property
    def total(self) -> int:
        fixed = sum(self.parts.get(name, 0) for name in self.fixed)
        passes = [v for k, v in self.parts.items() if k not in self.fixed]
        return fixed + max(passes, default=0)

    def largest(self) -> str:
        return max(self.parts, key=self.parts.__getitem__)

    def describe(self) -> str:
        items = sorted(self.parts.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{name} {format_bytes(value)}" for name, value in items)


def format_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # unreachable


def estimate_memory(
    vae: nn.Module,
    data_dim: int,
    latent_dim: int,
    batch_size: int,
    particles: int = 1,
    eval_particles: int = 10,
    num_train: int = 0,
    num_val: int = 0,
    num_samples: int | None = None,
    num_test: int = 0,
) -> MemoryEstimate:
    """The memory a run of ``vae`` (built on ``meta`` or not) will need; see the module's notes.
    ``num_samples``: also the importance-sampled log p(x) of ``num_test`` images."""
    params = parameter_count(vae)
    encoder = getattr(vae, "encoder", None)
    a_enc = output_width(encoder) + data_dim
    a_dec = output_width(vae) - output_width(encoder) + data_dim + 2 * latent_dim
    est = MemoryEstimate()
    est.parts["parameters"] = 4 * BYTES * params
    est.options["parameters"] = "--latent-dim, --hidden, the parts' options"
    est.parts["data"] = BYTES * (num_train + num_val) * data_dim
    est.options["data"] = "the data set"
    est.parts["training step"] = TRAIN_FACTOR * BYTES * batch_size * (a_enc + particles * a_dec)
    est.options["training step"] = "--batch-size, --particles, --latent-dim, --hidden"
    rows = min(num_val, HELDOUT_CHUNK) if num_val else HELDOUT_CHUNK
    est.parts["validation ELBO"] = EVAL_FACTOR * BYTES * rows * (a_enc + eval_particles * a_dec)
    est.options["validation ELBO"] = "--eval-particles, --latent-dim, --hidden"
    if num_samples is not None:
        batch = min(num_test, MARGINAL_BATCH) if num_test else MARGINAL_BATCH
        est.parts["log p(x) evaluation"] = (
            EVAL_FACTOR * BYTES * MARGINAL_ROWS * (a_enc + a_dec)
            + LOG_WEIGHT_BYTES * num_samples * batch
        )
        est.options["log p(x) evaluation"] = "--num-samples"
    return est


def available_memory(device: torch.device | str = "cpu") -> tuple[int, str] | None:
    """Bytes free for a new allocation on ``device`` and where that number comes from: CUDA's
    free memory on a GPU; on the CPU psutil's ``available`` when installed, else
    ``MemAvailable`` of ``/proc/meminfo``; None where neither can tell (no check then)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free), f"free memory of {device}"
    if device.type != "cpu":
        return None
    machine = _machine_memory()
    limit = _process_limit()
    if limit is not None and (machine is None or limit[0] < machine[0]):
        return limit
    return machine


def _process_limit() -> tuple[int, str] | None:
    """What this process may still allocate under its own limits (``ulimit -d`` / ``-v``,
    ``prlimit --data`` / ``--as``): the soft limit less what it holds (``VmData`` /
    ``VmSize`` of ``/proc/self/status``); None without a limit or where it cannot tell."""
    try:
        import resource  # noqa: PLC0415 - POSIX only
    except ImportError:
        return None
    found = []
    for name, field_name in (("RLIMIT_DATA", "VmData:"), ("RLIMIT_AS", "VmSize:")):
        soft = resource.getrlimit(getattr(resource, name))[0]
        if soft == resource.RLIM_INFINITY:
            continue
        try:
            with open("/proc/self/status") as f:
                used = next(
                    int(line.split()[1]) * 1024 for line in f if line.startswith(field_name)
                )
        except (OSError, ValueError, IndexError, StopIteration):
            continue
        found.append((max(0, soft - used), f"this process's limit {name} less what it holds"))
    return min(found, default=None)


def _machine_memory() -> tuple[int, str] | None:
    """Bytes free on the machine: psutil's ``available``, else ``MemAvailable``."""
    try:
        import psutil  # noqa: PLC0415 - optional
    except ImportError:
        psutil = None
    if psutil is not None:
        return int(psutil.virtual_memory().available), "available memory (psutil)"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(
    estimate: MemoryEstimate, device: torch.device | str = "cpu", what: str = "this run"
) -> None:
    """Refuse (:class:`InsufficientMemoryError`) when ``estimate`` exceeds the memory free on
    ``device``; the message gives the estimate, its parts and the limit."""
    free = available_memory(device)
    if free is None or estimate.total <= free[0]:
        return
    limit, source = free
    largest = estimate.largest()
    raise InsufficientMemoryError(
        f"{what} would need about {format_bytes(estimate.total)} of memory but "
        f"{format_bytes(limit)} is free on {torch.device(device)} ({source}); refused before "
        f"allocating it. The estimate: {estimate.describe()}. Reduce what sets the largest "
        f"part, the {largest} ({estimate.options.get(largest, 'its sizes')})."
    )


AIS_MAX_ROWS = 4096
"""(chain, image) rows of one AIS pass (``log_marginal_ais``'s ``max_rows``)."""
AIS_SCHEDULE_COPIES = 4
"""float64 copies of the T + 1 inverse temperatures alive at once (the schedule's linspace,
sigmoid and rescaling, and the reversed schedule of BDMC)."""
AIS_STATE_COPIES = 8
"""float32 copies of a pass's latent values: position, momentum, gradient, proposal, and
what an HMC transition keeps of them."""


def estimate_ais_memory(
    vae: nn.Module,
    data_dim: int,
    latent_dim: int,
    num_steps: int,
    num_chains: int,
    num_images: int,
    simulated: bool = False,
) -> MemoryEstimate:
    """The memory annealed importance sampling of ``num_images`` images needs, with T =
    ``num_steps`` and C = ``num_chains``, estimated before anything is allocated (the same
    accounting as :func:`estimate_memory`):

    * the schedule, T + 1 inverse temperatures in float64: 32 (T + 1) bytes;
    * the log-weights of every chain and image, float64, kept for the result and joined at the
      end (twice, and twice again for BDMC's two directions): 16 C N bytes, 32 C N for BDMC;
    * one pass over R = C min(N, max(1, 4096 // C)) (chain, image) rows, the model and the
      guide with gradients with respect to z, as a training step: 12 R (A_enc + A_dec) bytes,
      and the chains' latent values, 32 R D bytes;
    * the images: 4 N D_x bytes (``simulated``: BDMC's simulation pass of the model on the N
      images as well).

    Its purpose is to refuse sizes that cannot fit (``--chains 1000000000``) with the numbers
    in the message, before any allocation."""
    encoder = getattr(vae, "encoder", None)
    a_enc = output_width(encoder) + data_dim
    a_dec = output_width(vae) - output_width(encoder) + data_dim + 2 * latent_dim
    rows = num_chains * min(num_images, max(1, AIS_MAX_ROWS // num_chains))
    directions = 2 if simulated else 1
    est = MemoryEstimate(fixed=("parameters", "data", "AIS schedule", "AIS log-weights"))
    est.parts["parameters"] = BYTES * parameter_count(vae)
    est.options["parameters"] = "the run's model"
    est.parts["data"] = BYTES * num_images * data_dim * (2 if simulated else 1)
    est.options["data"] = "--bdmc" if simulated else "the data split"
    est.parts["AIS schedule"] = 8 * AIS_SCHEDULE_COPIES * (num_steps + 1)
    est.options["AIS schedule"] = "--steps"
    est.parts["AIS log-weights"] = 2 * 8 * directions * num_chains * num_images
    est.options["AIS log-weights"] = "--chains" + (" and --bdmc" if simulated else "")
    est.parts["AIS pass"] = TRAIN_FACTOR * BYTES * rows * (a_enc + a_dec) + (
        AIS_STATE_COPIES * BYTES * rows * latent_dim
    )
    est.options["AIS pass"] = "--chains"
    if simulated:
        est.parts["simulation"] = EVAL_FACTOR * BYTES * num_images * a_dec
        est.options["simulation"] = "--bdmc"
    return est
