"""Stochastic variational inference: the training loop, its ELBOs and its metrics.

Each step draws a minibatch of B of the N training examples and takes an Adam step on

    loss = -ELBO_hat = -(N / B) * sum_{n in batch} E_q[log p(x_n, z) - log q(z | x_n)],

the minibatch estimate of the whole data set's negative ELBO (the data plate's subsampling
scale does the N / B). Gradients come from Pyro's ELBO (``differentiable_loss``) through the
reparameterized guide sample. The optimizer is one ``torch.optim.Adam`` over all parameters
(the pattern Pyro documents for using PyTorch optimizers directly): one epoch of the
784-400-20 VAE is 1.27x faster than with ``pyro.optim``'s one-optimizer-per-parameter wrapper
(``experiments/bench_training.py``).

Reported numbers are per example, in nats: ``train_objective`` is the training objective
averaged over the epoch's minibatches (each example counted once): the ELBO for ``trace`` and
``meanfield`` with KL weight 1, the KL-weighted ELBO during warm-up or with beta != 1, the
importance-weighted bound for ``iwae``. ``val_elbo`` is the plain ELBO of the fixed validation
set with ``eval_particles`` samples per example, drawn from a fixed seed so that epochs differ
only through the parameters.

With several processes (:mod:`.distributed`, under torchrun) each step's minibatch is the
``batch_size`` examples of every process together, the gradients are summed so that all take
the one-process step on that global minibatch, and the numbers above are those of the global
minibatches; process 0 alone computes the validation ELBO.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from typing import Any

import pyro
import torch
from tqdm.auto import tqdm

from ..config import (  # noqa: F401  (re-exported)
    DEFAULT_EPOCHS,
    MAX_SEED,
    TrainConfig,
    jit_default,
    jit_where_valid,
    parse_device,
)
from ..config.frozen import Frozen
from ..data.datasets import ImageDataset
from ..errors import TrainingDivergedError
from ..model.parts import default_pixels, observes
from ..rng import cuda_devices, derived_seed, rng_state, set_rng_state
from . import thread_governor
from .compiled import COMPILE_MIN_STEPS, CompiledTraceELBO
from .devices import resolve_device  # noqa: F401
from .distributed import (
    SINGLE,
    ProcessGroup,
    broadcast_module,
    broadcast_number,
    epoch_permutation,
    process_seed,
    sum_gradients,
)
from .divergence import DIVERGENCE_NATS_PER_DIM, divergence_reason  # noqa: F401
from .heldout import EVAL_SEED, heldout_elbo  # noqa: F401
from .objectives import LatentScaleMessenger, make_objective
from .objectives import kl_weight as kl_schedule
from .resume import check_training_state, sanitized_optimizer_state
from .training_data import ImageData, TensorData, TrainingData, check_batch_size, check_tensor_data  # noqa: F401


def make_optimizer(params, lr: float) -> torch.optim.Adam:
    """Adam over all parameters at once, fused into one kernel where PyTorch supports it."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


def lr_factor(schedule: str, step: int, total_steps: int) -> float:
    """The learning rate of step ``step`` (0-based) of ``total_steps`` as a fraction of ``lr``:
    1 for ``constant``; (1 + cos(pi * step / total_steps)) / 2 for ``cosine`` (stateless, so a
    resumed run continues the same curve; raising ``--epochs`` on resume stretches the rest)."""
    if schedule == "constant" or total_steps <= 0:
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))


def part_modules(vae: torch.nn.Module) -> list[str]:
    """The modules that define ``vae``'s parts' classes (for ``jit_default``; a missing part's
    is ``builtins``, not the library's)."""
    names = ("prior", "encoder", "decoder", "likelihood")
    return [type(getattr(vae, name, None)).__module__ for name in names]


@dataclass
class EpochRecord:
    """One line of ``metrics.jsonl``."""

    epoch: int
    steps: int
    examples_seen: int
    train_objective: float
    val_elbo: float
    epoch_seconds: float
    wall_seconds: float
    kl_weight: float = 1.0
    test_elbo: float | None = None  # only when the trainer monitors a test set


class Trainer:
    """Trains a model/guide pair on a data set by SVI, one epoch at a time.

    ``on_epoch_end(trainer, record)`` is called after every epoch (the run directory uses it to
    write metrics and an atomic checkpoint). Creating a trainer clears Pyro's global param store,
    as Pyro's examples do, so that an earlier model's parameters of the same names cannot shadow
    this model's (the JIT-compiled ELBO reads parameters from the store).
    """

    def __init__(
        self,
        vae: torch.nn.Module,
        cfg: TrainConfig,
        data: ImageDataset | TrainingData,
        device: torch.device | None = None,
        progress: bool = True,
        on_epoch_end: Callable[[Trainer, EpochRecord], None] | None = None,
        x_test: torch.Tensor | None = None,
        pixels: str | None = None,
        group: ProcessGroup = SINGLE,
    ) -> None:
        self.group = group
        if not isinstance(cfg, Frozen):  # resolved once before (a job's plan): taken as it is
            cfg.validate()
            cfg = cfg.with_epochs_for(data.name)
            if cfg.jit is None:
                cfg.jit = jit_default(cfg.elbo, part_modules(vae))
            check_batch_size(cfg.batch_size, data)
        self.cfg = cfg
        pyro.clear_param_store()
        self.device = device if device is not None else resolve_device(cfg.device)
        self.vae = vae.to(self.device)
        self.progress = progress
        self.on_epoch_end = on_epoch_end
        if not isinstance(data, TrainingData):
            data = ImageData(data, pixels or default_pixels(vae.likelihood), self.device)
        elif isinstance(data, TensorData):
            data.to(self.device)
            check_tensor_data(data, vae.likelihood)
        self.data = data
        # monitored only (Kingma & Welling's Fig. 2 plots it), never used for any choice
        self.x_test = x_test.to(self.device) if x_test is not None else None
        self.optimizer = make_optimizer(self.vae.parameters(), cfg.lr)
        # With several processes: the seed of this process's random numbers (guide samples,
        # binarization noise), re-derived for every epoch so a resumed run draws the same.
        self.process_seed = process_seed(cfg.seed, group.rank, group.world_size)
        self._shared = False  # process 0's parameters given to all (at the first epoch)
        # One (model, guide, objective) per KL weight, built once and kept: a JIT-compiled
        # ELBO caches its graph by id(model) and id(guide) (``vae.model`` makes a new bound
        # method, sometimes with a new id, every time), and Pyro's JitTrace_ELBO keeps using the
        # model and guide of its first call even when given others, so each weight needs its
        # own objective instance.
        self._objectives: dict[float, tuple[Callable, Callable, Any]] = {}
        self.epoch = 0
        self.steps = 0
        self.wall_seconds = 0.0
        self.history: list[EpochRecord] = []

    @property
    def num_train(self) -> int:
        return self.data.num_train

    @property
    def x_val(self) -> torch.Tensor:
        return self.data.val

    @property
    def global_batch_size(self) -> int:
        """Examples per step, all processes together."""
        return self.cfg.batch_size * self.group.world_size

    def steps_per_epoch(self) -> int:
        return math.ceil(self.num_train / self.global_batch_size)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "data_dim": self.data.data_dim,
            "image_shape": list(self.data.image_shape or []),
            "model": self.vae.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "steps": self.steps,
            "wall_seconds": self.wall_seconds,
            "history": [asdict(r) for r in self.history],
            "rng": rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any], where: object = "the checkpoint") -> None:
        """Continue from ``state`` (what :meth:`state_dict` returned, e.g. read back from a
        file): every field is checked first (:func:`.resume.check_training_state`), and a
        state that does not fit is refused with :class:`CheckpointError` naming ``where``."""
        check_training_state(state, self.optimizer, EpochRecord, where)
        self.vae.load_state_dict(state["model"])
        optimizer = sanitized_optimizer_state(state["optimizer"], self.optimizer)
        self.optimizer.load_state_dict(optimizer)
        self.epoch = int(state["epoch"])
        self.steps = int(state["steps"])
        self.wall_seconds = float(state["wall_seconds"])
        self.history = [EpochRecord(**r) for r in state["history"]]
        set_rng_state(state["rng"])

    # ------------------------------------------------------------------ loop
    def objective(self, weight: float = 1.0) -> tuple[Callable, Callable, Any]:
        """Model, guide and objective with the KL term weighted by ``weight`` (cached)."""
        if weight not in self._objectives:
            model, guide = self.vae.model, self.vae.guide
            if weight != 1.0:
                model = LatentScaleMessenger(weight)(model)
                guide = LatentScaleMessenger(weight)(guide)
            compiled = self.cfg.jit and self.steps_at(weight) >= COMPILE_MIN_STEPS
            elbo = make_objective(self.cfg.elbo, self.cfg.particles, self.cfg.jit, compiled)
            if self.cfg.jit and not isinstance(elbo, CompiledTraceELBO):
                # Compiling runs the program several times and draws random numbers; do it
                # now, on the fixed validation data, with the RNG state restored afterwards, so
                # a fresh and a resumed run consume the same random stream. (The torch.compile
                # version forks the random state itself, at its first step with a train batch.)
                with torch.random.fork_rng(devices=cuda_devices()):
                    elbo.differentiable_loss(
                        model,
                        guide,
                        self.data.val[: self.cfg.batch_size],
                        num_data=self.num_train,
                    )
            self._objectives[weight] = (model, guide, elbo)
        return self._objectives[weight]

    def steps_at(self, weight: float) -> int:
        """The steps this run has left at KL weight ``weight`` (all of them without warm-up;
        one epoch's for a weight of the warm-up): what compiling the objective must repay."""
        epochs = range(self.epoch + 1, (self.cfg.epochs or 0) + 1)
        return self.steps_per_epoch() * sum(1 for e in epochs if self.kl_weight(e) == weight)

    def kl_weight(self, epoch: int | None = None) -> float:
        """The KL weight of (1-based) ``epoch``, by default the epoch about to be trained."""
        epoch = self.epoch + 1 if epoch is None else epoch
        return kl_schedule(epoch, self.cfg.beta, self.cfg.kl_warmup)

    def step(
        self, x: torch.Tensor, validate: bool = False, weight: float = 1.0, share: float = 1.0
    ) -> float:
        """One SVI step on the minibatch ``x``; returns the whole-data loss estimate
        (-ELBO, or the negative of the objective ``cfg.elbo`` names). With several processes
        ``x`` is this process's shard (possibly empty), a fraction ``share`` of the global
        minibatch, and the loss returned is the global minibatch's."""
        if self.group.active:
            return self._shared_step(x, validate, weight, share)
        model, guide, elbo = self.objective(weight)
        with pyro.validation_enabled(validate), self._unregistered(elbo):
            loss = elbo.differentiable_loss(model, guide, x, num_data=self.num_train)
        if not torch.isfinite(loss):
            self._diverged(loss.item())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._set_lr()
        self.optimizer.step()
        self.steps += 1
        return loss.item()

    @contextmanager
    def _unregistered(self, elbo: Any = None) -> Iterator[None]:
        """An eager step without ``pyro.module`` calls: this trainer's optimizer holds
        ``vae.parameters()`` itself, so registering them in Pyro's parameter store every step
        is work nothing reads (the TorchScript JIT's step registers once, when it is traced,
        and reads them there; an objective with ``reads_param_store = False`` never does)."""
        vae = self.vae
        reads_store = self.cfg.jit and getattr(elbo, "reads_param_store", True)
        if reads_store or not hasattr(vae, "register_parameters"):
            yield
            return
        before = vae.register_parameters
        vae.register_parameters = False
        try:
            yield
        finally:
            vae.register_parameters = before

    def _set_lr(self) -> None:
        """The scheduled learning rate of the step about to be taken (``--lr-schedule``)."""
        if self.cfg.lr_schedule == "constant":
            return
        total = self.cfg.epochs * self.steps_per_epoch()
        lr = self.cfg.lr * lr_factor(self.cfg.lr_schedule, self.steps, total)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _shared_step(self, x: torch.Tensor, validate: bool, weight: float, share: float) -> float:
        """The step of one of several processes: its loss scaled by its share b_r / G, the
        gradients and losses summed over the processes (:mod:`.distributed`)."""
        model, guide, elbo = self.objective(weight)
        self.optimizer.zero_grad(set_to_none=True)
        local = 0.0
        if len(x):
            with pyro.validation_enabled(validate), self._unregistered(elbo):
                loss = share * elbo.differentiable_loss(model, guide, x, num_data=self.num_train)
            loss.backward()
            local = loss.item()
        (total,) = sum_gradients(self.vae.parameters(), self.group, local)
        if not math.isfinite(total):  # every process sees the same sum, and stops alike
            self._diverged(total)
        self._set_lr()
        self.optimizer.step()
        self.steps += 1
        return total

    def _diverged(self, value: float) -> None:
        saved = (
            f"The last good checkpoint (epoch {self.epoch}) is intact."
            if self.epoch
            else "No epoch had completed, so nothing was saved."
        )
        raise TrainingDivergedError(
            f"the loss became {value} at epoch {self.epoch + 1}, step "
            f"{self.steps + 1}. {saved} Try a smaller --lr, a larger --batch-size, or check "
            "the data for extreme values."
        )

    def train_epoch(self, bar: tqdm | None = None) -> EpochRecord:
        """One pass over a fresh shuffle (and fresh binarization) of the training set."""
        start = time.perf_counter()
        cfg, n, group = self.cfg, self.num_train, self.group
        if group.active:  # this process's stream, and a shuffle shared by all
            if not self._shared:
                broadcast_module(self.vae, group)
                self._shared = True
            torch.manual_seed(derived_seed(self.process_seed, self.epoch + 1))
            perm = epoch_permutation(n, cfg.seed, self.epoch + 1).to(self.device)
        x_all = self.data.epoch()
        if not group.active:
            perm = torch.randperm(n, device=self.device)
        b, g, rank = cfg.batch_size, self.global_batch_size, group.rank
        weight = self.kl_weight()
        total = 0.0
        for i in range(self.steps_per_epoch()):
            idx = perm[i * g : (i + 1) * g]  # the global minibatch
            mine = idx[rank * b : (rank + 1) * b]  # this process's shard of it
            # Pyro's validation (support and shape checks) on the run's first step only.
            loss = self.step(
                x_all[mine], validate=self.steps == 0, weight=weight, share=len(mine) / len(idx)
            )
            total += loss * len(idx) / n  # = sum over the batch of -ELBO_n
            thread_governor.tick()  # --threads auto: follow the cores others leave free
            if bar is not None:
                bar.update(1)
        self.epoch += 1
        self.vae.eval()
        val = math.nan
        test = None
        if group.is_main:  # the others' records are never written
            with self._unregistered():
                m, g, k = self.vae.model, self.vae.guide, cfg.eval_particles
                val = heldout_elbo(m, g, self.x_val, k)
                if self.x_test is not None:
                    test = heldout_elbo(m, g, self.x_test, k)
        # every process decides on divergence from the same number: process 0's
        val = broadcast_number(val, group, "sharing the validation ELBO")
        self.vae.train()
        elapsed = time.perf_counter() - start
        self.wall_seconds += elapsed
        record = EpochRecord(
            epoch=self.epoch,
            steps=self.steps,
            examples_seen=self.epoch * n,
            kl_weight=weight,
            test_elbo=test,
            train_objective=-total / n,
            val_elbo=val,
            epoch_seconds=elapsed,
            wall_seconds=self.wall_seconds,
        )
        self.history.append(record)
        return record

    def divergence(self, record: EpochRecord) -> str | None:
        """Why the epoch of ``record`` counts as diverged, or None (see
        :func:`~.divergence.divergence_reason`)."""
        return divergence_reason(
            record.val_elbo,
            record.train_objective,
            [r.val_elbo for r in self.history[:-1]],
            self.data.data_dim,
            int(getattr(self.vae, "latent_dim", 0) or 0),
            observes(self.vae.likelihood),
        )

    def _stop_if_diverged(self, record: EpochRecord) -> None:
        why = self.divergence(record)
        if why is None:
            return
        kept = record.epoch - 1
        saved = (
            f"The last good checkpoint (epoch {kept}) is intact."
            if kept
            else "No epoch had completed before it, so no checkpoint was saved."
        )
        raise TrainingDivergedError(
            f"training diverged at epoch {record.epoch}: {why}. {saved} Try a smaller --lr "
            f"(this run: {self.cfg.lr:g}) or a larger --batch-size."
        )

    def fit(self) -> list[EpochRecord]:
        """Train until ``cfg.epochs`` epochs are done (continuing from ``self.epoch``); stop
        with :class:`TrainingDivergedError` at an epoch whose objective diverged (before
        ``on_epoch_end``, so the last checkpoint stays the last good one)."""
        epochs = self.cfg.epochs
        assert epochs is not None
        remaining = epochs - self.epoch
        if remaining <= 0:  # a finished run: nothing to do, no empty progress bar
            return self.history
        bar_ctx = (
            tqdm(
                total=remaining * self.steps_per_epoch(),
                desc=f"training {self.data.name}",
                unit="step",
                dynamic_ncols=True,
                mininterval=0.5,
            )
            if self.progress
            else nullcontext(None)
        )
        with bar_ctx as bar:
            while self.epoch < epochs:
                record = self.train_epoch(bar)
                self._stop_if_diverged(record)
                if bar is not None:
                    bar.set_postfix(
                        epoch=record.epoch,
                        train=f"{record.train_objective:.2f}",
                        val_elbo=f"{record.val_elbo:.2f}",
                        refresh=False,
                    )
                if self.on_epoch_end is not None:
                    self.on_epoch_end(self, record)
        return self.history
