"""The ELBO compiled by ``torch.compile``: the training step's fast path.

Pyro's model and guide run through poutine handlers (traces, replay, plates), Python that
``torch.compile`` cannot capture in one graph: compiled whole, ``Trace_ELBO`` splits into ten
graphs at nine breaks and runs slower than eager (``experiments/bench_compiled.py``). So the
program is taken apart once instead, as Pyro's ``JitTrace_ELBO`` does with ``torch.jit.trace``:

1. the loss runs once eagerly, and the leaves of its autograd graph are the parameters it
   reaches (module parameters, ``pyro.param`` sites, whatever the parts use);
2. ``make_fx`` records the tensor operations of one more run, Pyro's bookkeeping included:
   the one-sample (or vectorized K-sample) ELBO as a pure function ``loss(params, x)``, the
   guide's random draws among its operations;
3. ``torch.compile`` (Inductor) compiles that graph, forward and backward, with its random
   numbers drawn by PyTorch's own generator (``fallback_random``), so that a seed gives the
   eager objective's draws, values and gradients.

Like any tracing, this freezes the program's Python control flow at the first batch: valid
for programs whose structure does not depend on tensor values (the library's parts); a
user's parts opt in (``--jit``). One graph is made per program (model, guide and keyword
arguments), for the batch shape it is first called with; a batch of another shape (an epoch's
last, smaller batch) runs eagerly, as does a step with Pyro's validation on (a run's first)
or without gradients: compiling costs seconds. Where the compiler is unavailable or fails
(no C++ compiler, an untraceable part), the objective says so on stderr in one line and
computes the same loss eagerly.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pyro
import torch
from pyro.distributions.util import is_identically_zero
from pyro.infer import Trace_ELBO
from pyro.infer.trace_elbo import _compute_log_r
from pyro.infer.util import is_validation_enabled

COMPILE_OPTIONS: dict[str, Any] = {"fallback_random": True}
"""Inductor's options: random numbers from PyTorch's generator, the eager objective's draws."""

COMPILE_MIN_STEPS = 10_000
"""The fewest steps at one KL weight for which ``--jit`` (the default with the library's parts)
compiles with ``torch.compile`` rather than tracing with TorchScript. Measured on 2 shared
cores at batch 128, 1 thread (``experiments/bench_compiled.py``): compiling takes 5 to 35 s
against the JIT's 0.3 to 0.8 s and saves 0.7 to 4.9 ms a step, a break-even of 2,000 to
6,800 steps; end to end, the default ``digits`` run (5,000 steps) took 99.9 s compiled
against 92.2 s with the JIT (its compile 18.6 s, then 0.160 s an epoch against 0.182 s). So
the JIT stays for runs like that one and shorter (tests, quick tries, a KL warm-up's
epochs); the default MNIST and Fashion-MNIST runs (19,550 steps) compile."""

_noticed: set[str] = set()
"""The fallback notices already printed by this process (each is printed once)."""


def _notice(exc: BaseException) -> None:
    """One line on stderr: the compiled objective fell back to eager, and why."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    if len(reason) > 160:
        reason = reason[:157] + "..."
    line = (
        "pyro-vae: note: torch.compile is unavailable or failed here "
        f"({type(exc).__name__}: {reason}); training with the eager ELBO (the same objective, "
        "slower)"
    )
    if line not in _noticed:
        _noticed.add(line)
        print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Tracing and compiling without warnings or log lines reaching the user (the compiler
    logs, e.g., that it found no CUDA runtime); a failure is reported by :func:`_notice`."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _leaves(loss: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The tensors whose gradients ``loss.backward()`` would accumulate (its autograd graph's
    leaves), in a fixed order."""
    found: dict[int, torch.Tensor] = {}
    seen: set[Any] = set()
    stack = [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        variable = getattr(node, "variable", None)
        if isinstance(variable, torch.Tensor):
            found.setdefault(id(variable), variable)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return tuple(found.values())


def _identity(fn: Callable) -> Any:
    """What identifies a program: a bound method by its object and function (``vae.model``
    is a new method object at every access), anything else by its identity."""
    if inspect.ismethod(fn):
        return id(fn.__self__), fn.__func__
    return id(fn)


def _signature(value: Any) -> Any:
    """What a graph is specialized to of an argument: a tensor's shape, dtype, device and
    whether it requires gradients; any other value itself."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), value.dtype, value.device, value.requires_grad)
    return value


def _key(model: Callable, guide: Callable, args: tuple, kwargs: dict) -> tuple:
    """Which program a call runs: model, guide, the number of arguments and the keyword
    arguments (each a constant of the graph)."""
    named = tuple(sorted((k, _signature(v)) for k, v in kwargs.items()))
    return _identity(model), _identity(guide), len(args), named


class CompiledTraceELBO(Trace_ELBO):
    """``Trace_ELBO`` whose loss and gradient are computed by a graph compiled with
    ``torch.compile`` (see the module's description); the same value and gradient as
    ``Trace_ELBO.differentiable_loss`` given the same random numbers.

    ``compiler``: turns the traced graph into a callable (default: ``torch.compile`` with
    Inductor), a seam for tests; anything it raises, then or at the graph's first forward and
    backward pass, makes this objective eager for good, with a one-line notice."""

    reads_param_store = False
    """Its parameters are found from the loss's autograd graph: no ``pyro.module`` needed."""

    def __init__(
        self,
        num_particles: int = 1,
        vectorize_particles: bool = False,
        max_plate_nesting: float = float("inf"),
        compiler: Callable[[torch.fx.GraphModule], Callable] | None = None,
    ) -> None:
        super().__init__(
            num_particles=num_particles,
            vectorize_particles=vectorize_particles,
            max_plate_nesting=max_plate_nesting,
        )
        self.compiler = compiler or _inductor
        self.compiled: dict[tuple, tuple] = {}
        self.failed: BaseException | None = None

    # ------------------------------------------------------------------ the objective
    def eager_loss(self, model: Callable, guide: Callable, *args, **kwargs) -> torch.Tensor:
        """The loss computed eagerly, as the compiled graph computes it: the value of
        ``Trace_ELBO``'s loss with the gradient of its surrogate (no ``.item()``, which a trace
        would freeze)."""
        loss = surrogate = 0.0
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            elbo = surrogate_elbo = 0.0
            log_r = None
            for site in model_trace.nodes.values():
                if site["type"] == "sample":
                    elbo = elbo + site["log_prob_sum"]
                    surrogate_elbo = surrogate_elbo + site["log_prob_sum"]
            for site in guide_trace.nodes.values():
                if site["type"] != "sample":
                    continue
                _, score_function_term, entropy_term = site["score_parts"]
                elbo = elbo - site["log_prob_sum"]
                if not is_identically_zero(entropy_term):
                    surrogate_elbo = surrogate_elbo - entropy_term.sum()
                if not is_identically_zero(score_function_term):
                    if log_r is None:
                        log_r = _compute_log_r(model_trace, guide_trace)
                    log_r_site = log_r.sum_to(site["cond_indep_stack"])
                    surrogate_elbo = surrogate_elbo + (log_r_site * score_function_term).sum()
            loss = loss - elbo / self.num_particles
            surrogate = surrogate - surrogate_elbo / self.num_particles
        return surrogate + (loss - surrogate).detach()

    def differentiable_loss(self, model: Callable, guide: Callable, *args, **kwargs):
        """The loss (``-ELBO``) with the ELBO's gradient, from the compiled graph where there
        is one."""
        if self.failed is not None or is_validation_enabled() or not torch.is_grad_enabled():
            return self.eager_loss(model, guide, *args, **kwargs)
        key = _key(model, guide, args, kwargs)
        shapes = tuple(_signature(a) for a in args)
        entry = self.compiled.get(key)
        if entry is None or not (_same(entry[0], model) and _same(entry[1], guide)):
            try:
                entry = self._compile(model, guide, args, kwargs)
            except Exception as exc:  # noqa: BLE001  (any failure: the eager objective)
                self.failed = exc
                _notice(exc)
                return self.eager_loss(model, guide, *args, **kwargs)
            self.compiled[key] = entry
        *_, params, fn, compiled_shapes = entry
        if shapes != compiled_shapes:  # another batch size (an epoch's last batch): eager
            return self.eager_loss(model, guide, *args, **kwargs)
        return fn(params, *args)

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        """For ``pyro.infer.SVI``: backpropagate and return the loss."""
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        loss.backward()
        return loss.item()

    # ------------------------------------------------------------------ compiling
    def _compile(self, model, guide, args: tuple, kwargs: dict) -> tuple:
        """Trace the loss on ``args`` into a graph of its parameters and arguments, compile
        it, and run it forward and backward once (Inductor compiles the backward pass
        lazily): any failure is raised here, not in the training step."""
        from torch.fx.experimental.proxy_tensor import make_fx

        kwargs = dict(kwargs)

        def loss_of(params: tuple, *tensors):
            return self.eager_loss(model, guide, *tensors, **kwargs)

        with _quiet(), torch.random.fork_rng(devices=_devices(args)):
            params = _leaves(self.eager_loss(model, guide, *args, **kwargs))
            if not params:
                raise ValueError("the loss reaches no parameter")
            with pyro.validation_enabled(False):
                graph = make_fx(loss_of)(params, *args)
            fn = self.compiler(graph)
            loss = fn(params, *args)
            torch.autograd.grad(loss, params, allow_unused=True)
        return model, guide, params, fn, tuple(_signature(a) for a in args)


def _same(kept: Callable, fn: Callable) -> bool:
    """Whether ``fn`` is the program ``kept`` (kept alive with its graph, so that its
    identity cannot be reused by another)."""
    return kept is fn or (inspect.ismethod(fn) and kept == fn)


def _inductor(graph: torch.fx.GraphModule) -> Callable:
    """``torch.compile`` with Inductor, one graph for one shape."""
    return torch.compile(graph, dynamic=False, fullgraph=True, options=COMPILE_OPTIONS)


def _devices(args: tuple) -> list[int]:
    """The CUDA devices whose random state compiling must leave as it found it."""
    return sorted({a.device.index or 0 for a in args if isinstance(a, torch.Tensor) and a.is_cuda})
