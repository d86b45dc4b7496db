"""The ELBO compiled by torch.compile (``pyro_vae.infer.compiled``): the eager ``Trace_ELBO``'s
loss and gradients given the same random numbers, a one-line notice and the eager objective
where compiling fails, and no warning on the way.

Compiling is slow on a shared machine (10 to 110 s a graph for these tiny models with an empty
Inductor cache, 20 to 30 s with a warm one): two tests compile, one graph each; the rest run
the traced graph uncompiled, or a compiler that fails at once."""

from __future__ import annotations

import warnings

import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO

from pyro_vae import ModelConfig, RunConfig, Trainer, build_vae, resolve
from pyro_vae.infer import compiled
from pyro_vae.infer.compiled import COMPILE_MIN_STEPS, CompiledTraceELBO
from pyro_vae.infer.objectives import JitTraceELBO, make_objective

N, B = 1197, 171  # digits' training split, and a batch size that divides it (one graph)


def _vae(**model):
    cfg = ModelConfig(hidden=[32], latent_dim=4, **model)
    torch.manual_seed(0)
    vae = build_vae(cfg, 64)
    vae.register_parameters = False
    return vae


def _loss_and_grads(vae, loss_fn, x, seed=3):
    """The loss and every parameter's gradient (zeros where none) with the noise of ``seed``."""
    params = list(vae.parameters())
    for p in params:
        p.grad = None
    torch.manual_seed(seed)
    loss = loss_fn(vae.model, vae.guide, x, num_data=N)
    loss.backward()
    grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params]
    return loss.detach(), grads


def _assert_same(eager, compiled_result):
    (loss, grads), (loss_c, grads_c) = eager, compiled_result
    torch.testing.assert_close(loss_c, loss, rtol=1e-5, atol=1e-3)
    for g, g_c in zip(grads, grads_c, strict=True):
        torch.testing.assert_close(g_c, g, rtol=1e-4, atol=1e-4 * g.abs().max().item() + 1e-6)


@pytest.mark.parametrize(
    "model",
    [
        {},  # the default: mixture-of-Gaussians prior, diagonal guide
        {"prior": "vamp", "prior_kwargs": {"pseudo_inputs": 5}, "guide": "full"},
    ],
    ids=["default", "vamp-full"],
)
def test_the_compiled_loss_and_gradients_are_the_eager_ones(digits, capfd, model):
    """With the same seed the compiled graph draws the eager step's noise: the loss and every
    gradient agree to float tolerance, at the first compiled call and the next (another seed),
    and compiling says nothing on stderr and raises no warning (warnings are errors here)."""
    vae = _vae(**model)
    x = digits.train.images[:B].reshape(B, -1).div(16).bernoulli()
    elbo = CompiledTraceELBO(max_plate_nesting=1)
    with pyro.validation_enabled(False), warnings.catch_warnings():
        warnings.simplefilter("error")
        first = _loss_and_grads(vae, elbo.differentiable_loss, x)
        second = _loss_and_grads(vae, elbo.differentiable_loss, x, seed=4)
    assert elbo.failed is None and len(elbo.compiled) == 1
    assert capfd.readouterr().err == ""
    reference = Trace_ELBO(max_plate_nesting=1).differentiable_loss
    _assert_same(_loss_and_grads(vae, reference, x), first)
    _assert_same(_loss_and_grads(vae, reference, x, seed=4), second)
    assert not torch.equal(first[0], second[0])  # other noise, another loss: not a constant


def _failing(graph):
    raise RuntimeError("no compiler in this test\nsecond line of the compiler's complaint")


def test_a_failing_compiler_gives_one_line_and_the_eager_loss(digits, capsys, monkeypatch):
    monkeypatch.setattr(compiled, "_noticed", set())
    vae = _vae()
    x = digits.train.images[:B].reshape(B, -1).div(16).bernoulli()
    elbo = CompiledTraceELBO(max_plate_nesting=1, compiler=_failing)
    with pyro.validation_enabled(False):
        result = _loss_and_grads(vae, elbo.differentiable_loss, x)
        again = _loss_and_grads(vae, elbo.differentiable_loss, x, seed=4)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "torch.compile is unavailable" in err and "no compiler in this test" in err
    assert "eager" in err
    assert isinstance(elbo.failed, RuntimeError) and not elbo.compiled
    reference = Trace_ELBO(max_plate_nesting=1).differentiable_loss
    _assert_same(_loss_and_grads(vae, reference, x), result)
    _assert_same(_loss_and_grads(vae, reference, x, seed=4), again)


def test_validation_and_no_grad_steps_run_eagerly_without_compiling(digits):
    """A run's first step validates (Pyro's checks need the eager program), and a loss without
    gradients needs no backward graph: neither compiles."""
    vae = _vae()
    x = digits.train.images[:B].reshape(B, -1).div(16).bernoulli()
    elbo = CompiledTraceELBO(max_plate_nesting=1, compiler=_failing)
    with pyro.validation_enabled(True):
        elbo.differentiable_loss(vae.model, vae.guide, x, num_data=N)
    with pyro.validation_enabled(False), torch.no_grad():
        elbo.differentiable_loss(vae.model, vae.guide, x, num_data=N)
    assert elbo.failed is None and not elbo.compiled


def test_the_compiled_objective_is_an_elbo_choice():
    elbo = make_objective("compiled", 1, False)
    assert isinstance(elbo, CompiledTraceELBO) and elbo.max_plate_nesting == 1
    with pytest.raises(ValueError, match="no JIT-compiled version"):
        make_objective("compiled", 1, True)


def test_one_graph_per_program_and_other_batch_shapes_run_eagerly(digits):
    """The traced graph (run as traced, not compiled: fast) for the first batch shape only;
    an epoch's last, smaller batch runs eagerly; ``vae.model`` (a new method object at every
    access) is the same program. Both give the eager loss and gradients."""
    graphs = []

    def uncompiled(graph):
        graphs.append(graph)
        return graph

    vae = _vae(prior="two-layer", guide="flow")
    x = digits.train.images[:B].reshape(B, -1).div(16).bernoulli()
    elbo = CompiledTraceELBO(max_plate_nesting=1, compiler=uncompiled)
    reference = Trace_ELBO(max_plate_nesting=1).differentiable_loss
    with pyro.validation_enabled(False):
        for batch in (x, x[:45], x):
            _assert_same(
                _loss_and_grads(vae, reference, batch),
                _loss_and_grads(vae, elbo.differentiable_loss, batch),
            )
    assert len(graphs) == 1 and len(elbo.compiled) == 1


@pytest.mark.parametrize(
    "epochs,warmup,compiled_weights",
    [
        (500, 0, []),  # digits' default, 5,000 steps: the TorchScript JIT, cheaper in all
        (999, 0, []),
        (1000, 0, [1.0]),  # 10,000 steps (COMPILE_MIN_STEPS): torch.compile
        (1050, 10, [1.0]),  # the warm-up's weights last an epoch each: JIT; the last, compiled
    ],
)
def test_the_default_compiles_where_the_run_repays_it(digits, epochs, warmup, compiled_weights):
    """``--jit`` (the default with the library's parts) takes torch.compile's version for a KL
    weight with at least COMPILE_MIN_STEPS steps left, the TorchScript JIT's otherwise."""
    cfg = RunConfig()
    cfg.model.hidden, cfg.model.latent_dim = [16], 2
    cfg.train.epochs, cfg.train.kl_warmup = epochs, warmup
    cfg = resolve(cfg)
    trainer = Trainer(build_vae(cfg.model, 64), cfg.train, digits, progress=False)
    assert cfg.train.jit and trainer.steps_per_epoch() * 1000 == COMPILE_MIN_STEPS
    for weight in {trainer.kl_weight(1), trainer.kl_weight(epochs)}:
        elbo = trainer.objective(weight)[2]
        expected = CompiledTraceELBO if weight in compiled_weights else JitTraceELBO
        assert type(elbo) is expected
