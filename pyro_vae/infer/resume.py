"""Checking a training checkpoint before anything uses it: every field that
:meth:`~pyro_vae.infer.training.Trainer.load_state_dict` reads (counters, history, the
optimizer's state, the random-number state) is validated first, so that a resume from a
corrupt or crafted file is refused with a message before the run directory or the process's
state is touched.

The optimizer's state matters most: PyTorch's fused Adam trusts that every moment tensor has its
parameter's shape and reads out of bounds otherwise (a glibc abort or a segmentation fault). Each
``exp_avg`` / ``exp_avg_sq`` is checked against its parameter (shape, dtype, finite values) and
copied into fresh, contiguous memory; the flags of each parameter group (fused, foreach,
amsgrad, ...) are the running optimizer's own, never the file's.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError

ADAM_STATE_KEYS = frozenset({"step", "exp_avg", "exp_avg_sq"})
"""What Adam keeps per parameter (without ``amsgrad``, which pyro-vae never turns on)."""

NUMERIC_GROUP_KEYS = ("lr", "betas", "eps", "weight_decay")
"""The hyperparameters of a parameter group taken from a checkpoint (each checked); every other
entry of a group comes from the running optimizer."""

MAX_STEPS = 1 << 53
"""Beyond this a float32 or float64 step count no longer counts exactly."""


def _fail(where: object, what: str) -> CheckpointError:
    return CheckpointError(
        f"{where}: does not match a pyro-vae training checkpoint: {what}; nothing was changed"
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def dense_tensor(value: Any, where: object, what: str) -> torch.Tensor:
    """``value`` if it is a dense tensor whose storage really holds each of its elements (no
    zero-stride expansion of a few stored numbers into billions), else :class:`CheckpointError`."""
    if not isinstance(value, torch.Tensor):
        raise _fail(where, f"{what} is not a tensor")
    if value.layout != torch.strided or value.is_quantized or value.is_complex():
        raise _fail(where, f"{what} is not a dense real tensor")
    needed = value.numel() * value.element_size()
    held = value.untyped_storage().nbytes() - value.storage_offset() * value.element_size()
    if value.numel() and needed > held:
        raise _fail(
            where,
            f"{what} has shape {tuple(value.shape)} but its file stores "
            f"{max(held, 0) // max(value.element_size(), 1)} values (an expanded tensor)",
        )
    return value


def check_counters(state: Mapping[str, Any], where: object) -> int:
    """The epoch, step and wall-clock counters; returns the epoch."""
    epoch, steps, seconds = state.get("epoch"), state.get("steps"), state.get("wall_seconds")
    if not _is_int(epoch) or epoch < 0:
        raise _fail(where, f"epoch must be an integer >= 0, got {epoch!r}")
    if not _is_int(steps) or not 0 <= steps <= MAX_STEPS:
        raise _fail(where, f"steps must be an integer >= 0, got {steps!r}")
    if not _is_number(seconds) or not math.isfinite(seconds) or seconds < 0:
        raise _fail(where, f"wall_seconds must be a finite number >= 0, got {seconds!r}")
    return epoch


def check_history(history: Any, epoch: int, record_type: type, where: object) -> None:
    """One record per completed epoch, numbered 1, 2, ..., each with exactly the fields of
    ``record_type`` (a dataclass: ``EpochRecord``), integers and finite numbers."""
    if not isinstance(history, list) or len(history) != epoch:
        got = f"{len(history)} records" if isinstance(history, list) else type(history).__name__
        raise _fail(where, f"the history must list the {epoch} completed epochs, got {got}")
    fields = {f.name: f for f in dataclasses.fields(record_type)}
    required = {
        n
        for n, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    for i, record in enumerate(history, 1):
        if not isinstance(record, Mapping):
            raise _fail(where, f"history record {i} is not a mapping")
        unknown = sorted(str(k) for k in record if k not in fields)
        missing = sorted(required - set(record))
        if unknown or missing:
            detail = f"unknown key {unknown[0]!r}" if unknown else f"no {missing[0]!r}"
            raise _fail(where, f"history record {i} has {detail}")
        for name, value in record.items():
            ok = (
                _is_int(value) and value >= 0
                if name in ("epoch", "steps", "examples_seen")
                else (value is None and name == "test_elbo")
                or (_is_number(value) and math.isfinite(value))
            )
            if not ok:
                raise _fail(where, f"history record {i}: {name} is {value!r}")
        if record["epoch"] != i:
            raise _fail(where, f"history record {i} says epoch {record['epoch']}")


def _check_moments(saved: Any, param: torch.Tensor, where: object, index: int) -> None:
    if not isinstance(saved, Mapping):
        raise _fail(where, f"the optimizer state of parameter {index} is not a mapping")
    keys = set(saved)
    if keys != ADAM_STATE_KEYS:
        odd = sorted(map(str, keys ^ ADAM_STATE_KEYS))
        raise _fail(where, f"the optimizer state of parameter {index} has or lacks {odd[0]!r}")
    step = dense_tensor(saved["step"], where, f"the optimizer step of parameter {index}")
    if step.numel() != 1 or not step.is_floating_point():
        raise _fail(where, f"the optimizer step of parameter {index} is not one number")
    value = float(step.reshape(()))
    if not (math.isfinite(value) and 0 <= value <= MAX_STEPS and value == int(value)):
        raise _fail(where, f"the optimizer step of parameter {index} is {value!r}")
    for key in ("exp_avg", "exp_avg_sq"):
        what = f"the optimizer's {key} of parameter {index}"
        moment = dense_tensor(saved[key], where, what)
        if tuple(moment.shape) != tuple(param.shape) or moment.dtype != param.dtype:
            raise _fail(
                where,
                f"{what} is {moment.dtype} {tuple(moment.shape)}, but the parameter is "
                f"{param.dtype} {tuple(param.shape)}",
            )
        if not bool(torch.isfinite(moment).all()) or (
            key == "exp_avg_sq" and bool((moment < 0).any())
        ):
            raise _fail(where, f"{what} holds NaN, infinite or (squares) negative values")


def _check_group(saved: Any, params: Sequence[torch.Tensor], where: object, g: int) -> list:
    """The saved group's parameter ids (one per parameter of the running group)."""
    if not isinstance(saved, Mapping):
        raise _fail(where, f"optimizer parameter group {g} is not a mapping")
    ids = saved.get("params")
    if (
        not isinstance(ids, list)
        or len(ids) != len(params)
        or not all(_is_int(i) for i in ids)
        or len(set(ids)) != len(ids)
    ):
        raise _fail(
            where,
            f"optimizer parameter group {g} must list {len(params)} distinct parameter ids",
        )
    lr, betas, eps, decay = (saved.get(k) for k in NUMERIC_GROUP_KEYS)
    finite = all(_is_number(v) and math.isfinite(v) for v in (lr, eps, decay))
    betas_ok = (
        isinstance(betas, (tuple, list))
        and len(betas) == 2
        and all(_is_number(b) and 0 <= b < 1 for b in betas)
    )
    if not (finite and betas_ok and lr > 0 and eps > 0 and decay >= 0):
        raise _fail(where, f"optimizer parameter group {g} has invalid lr, betas, eps or decay")
    return ids


def check_optimizer_state(saved: Any, optimizer: torch.optim.Optimizer, where: object) -> None:
    """``saved`` fits ``optimizer`` (a ``torch.optim.Adam`` over the same parameters): one
    group per group with as many parameters, Adam's state for each with the parameter's shape
    and dtype, finite values."""
    if not isinstance(saved, Mapping):
        raise _fail(where, "the optimizer state is missing or not a mapping")
    groups, state = saved.get("param_groups"), saved.get("state")
    running = [list(g["params"]) for g in optimizer.param_groups]
    if not isinstance(groups, list) or len(groups) != len(running):
        raise _fail(where, f"the optimizer state must have {len(running)} parameter group(s)")
    if not isinstance(state, Mapping):
        raise _fail(where, "the optimizer's per-parameter state is missing")
    by_id: dict[int, torch.Tensor] = {}
    for g, (group, params) in enumerate(zip(groups, running, strict=True)):
        for i, p in zip(_check_group(group, params, where, g), params, strict=True):
            if i in by_id:
                raise _fail(where, f"optimizer parameter id {i} appears twice")
            by_id[i] = p
    for i, moments in state.items():
        if not _is_int(i) or i not in by_id:
            raise _fail(where, f"the optimizer holds state for an unknown parameter {i!r}")
        _check_moments(moments, by_id[i], where, i)


def sanitized_optimizer_state(saved: Mapping[str, Any], optimizer: torch.optim.Optimizer) -> dict:
    """What ``optimizer.load_state_dict`` may safely be given of a ``saved`` state that
    :func:`check_optimizer_state` accepted: fresh contiguous copies of the tensors, and groups
    whose flags are the running optimizer's (only the numbers of :data:`NUMERIC_GROUP_KEYS`
    come from the file)."""
    groups = []
    running = optimizer.state_dict()["param_groups"]
    for mine, theirs in zip(running, saved["param_groups"], strict=True):
        group = {k: v for k, v in mine.items() if k != "param_names"}
        group.update({k: theirs[k] for k in NUMERIC_GROUP_KEYS})
        group["betas"] = tuple(float(b) for b in theirs["betas"])
        group["params"] = list(theirs["params"])
        groups.append(group)
    state = {
        i: {k: v.detach().clone(memory_format=torch.contiguous_format) for k, v in s.items()}
        for i, s in saved["state"].items()
    }
    return {"state": state, "param_groups": groups}


def check_rng_state(state: Any, where: object) -> None:
    """What :func:`pyro_vae.rng.rng_state` saved, each part tried on a throwaway generator (the
    process's own generators are not touched)."""
    if not isinstance(state, Mapping) or not {"torch", "python", "numpy"} <= set(state):
        raise _fail(where, "the random-number state is missing or incomplete")
    cpu = dense_tensor(state["torch"], where, "the torch random-number state")
    if cpu.dtype != torch.uint8 or cpu.dim() != 1:
        raise _fail(where, "the torch random-number state is not a byte vector")
    try:
        torch.Generator().set_state(cpu.clone())
    except (RuntimeError, ValueError, TypeError):
        raise _fail(where, "the torch random-number state is invalid") from None
    _check_python_rng(state["python"], where)
    _check_numpy_rng(state["numpy"], where)
    cuda = state.get("cuda")
    if cuda is not None and not (
        isinstance(cuda, list)
        and all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8 for t in cuda)
    ):
        raise _fail(where, "the CUDA random-number state is not a list of byte vectors")
    if cuda and torch.cuda.is_available() and len(cuda) > torch.cuda.device_count():
        raise _fail(where, f"the CUDA random-number state is for {len(cuda)} devices")


def _check_python_rng(value: Any, where: object) -> None:
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 3
        and value[0] == 3
        and isinstance(value[1], (tuple, list))
        and all(_is_int(v) for v in value[1])
        and (value[2] is None or isinstance(value[2], float))
    )
    if ok:
        try:
            random.Random().setstate((3, tuple(value[1]), value[2]))
        except (ValueError, TypeError, OverflowError):
            ok = False
    if not ok:
        raise _fail(where, "the Python random-number state is invalid")


def _check_numpy_rng(value: Any, where: object) -> None:
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 5
        and value[0] == "MT19937"
        and isinstance(value[1], torch.Tensor)
        and value[1].dim() == 1
        and value[1].numel() == 624
        and value[1].dtype in (torch.uint32, torch.int64, torch.int32)
        and _is_int(value[2])
        and 0 <= value[2] <= 624
        and _is_int(value[3])
        and value[3] in (0, 1)
        and _is_number(value[4])
    )
    if ok:
        try:
            keys = dense_tensor(value[1], where, "the NumPy random-number state")
            np.random.RandomState().set_state(
                ("MT19937", keys.numpy().astype(np.uint32), *value[2:])
            )
        except (ValueError, TypeError, OverflowError):
            ok = False
    if not ok:
        raise _fail(where, "the NumPy random-number state is invalid")


def check_training_state(
    state: Mapping[str, Any],
    optimizer: torch.optim.Optimizer,
    record_type: type,
    where: object = "the checkpoint",
) -> None:
    """Everything a resume reads of ``state`` besides the model's weights: counters, history
    (records of ``record_type``), the optimizer's state against ``optimizer``, and the
    random-number state. Raises :class:`CheckpointError` on the first problem."""
    if not isinstance(state, Mapping):
        raise _fail(where, "not a mapping")
    epoch = check_counters(state, where)
    check_history(state.get("history"), epoch, record_type, where)
    check_optimizer_state(state.get("optimizer"), optimizer, where)
    check_rng_state(state.get("rng"), where)
