import math
import statistics
from dataclasses import asdict

import pyro
import pytest
import torch
from pyro.infer import JitTrace_ELBO, Trace_ELBO

from pyro_vae import (
    ConfigError,
    DataFormatError,
    ModelConfig,
    RunConfig,
    Trainer,
    TrainingDivergedError,
    build_vae,
    heldout_elbo,
)
from pyro_vae.data.pixels import eval_view


def small_config(**train) -> RunConfig:
    cfg = RunConfig()
    cfg.model.hidden = [64]
    cfg.model.latent_dim = 8
    for key, value in train.items():
        setattr(cfg.train, key, value)
    return cfg


def make_trainer(digits, cfg) -> Trainer:
    pyro.set_rng_seed(cfg.train.seed)
    vae = build_vae(cfg.model, digits.data_dim, cfg.data.pixels)
    return Trainer(
        vae, cfg.train, digits, pixels=cfg.data.pixels, device=torch.device("cpu"), progress=False
    )


def test_training_raises_the_heldout_elbo_by_a_clear_margin(digits):
    cfg = small_config(epochs=30)  # 300 steps of batch 128
    trainer = make_trainer(digits, cfg)
    before = heldout_elbo(trainer.vae.model, trainer.vae.guide, trainer.x_val, 10)
    history = trainer.fit()
    after = history[-1].val_elbo
    assert len(history) == 30 and trainer.steps == 300
    # The untrained model is at about -45 nats; 300 steps reach about -26.
    assert after > before + 10.0, (before, after)
    assert history[-1].val_elbo > history[0].val_elbo + 3.0
    # val_elbo is the held-out ELBO of the fixed validation set
    assert heldout_elbo(trainer.vae.model, trainer.vae.guide, trainer.x_val, 10) == pytest.approx(
        after
    )


def test_epoch_records_are_per_example_and_cumulative(digits):
    history = make_trainer(digits, small_config(epochs=3)).fit()
    assert [r.epoch for r in history] == [1, 2, 3]
    assert [r.examples_seen for r in history] == [1197, 2394, 3591]
    assert [r.steps for r in history] == [10, 20, 30]
    for r in history:
        assert -100 < r.train_objective < 0 and -100 < r.val_elbo < 0  # nats per 64-pixel image
        assert r.epoch_seconds > 0
    assert history[-1].wall_seconds == pytest.approx(sum(r.epoch_seconds for r in history))


def test_same_seed_same_trajectory_on_cpu(digits):
    a = [asdict(r) for r in make_trainer(digits, small_config(epochs=3, seed=5)).fit()]
    b = [asdict(r) for r in make_trainer(digits, small_config(epochs=3, seed=5)).fit()]
    c = [asdict(r) for r in make_trainer(digits, small_config(epochs=3, seed=6)).fit()]
    keys = ("train_objective", "val_elbo")
    assert [[r[k] for k in keys] for r in a] == [[r[k] for k in keys] for r in b]
    assert [r["train_objective"] for r in a] != [r["train_objective"] for r in c]


def test_state_dict_continues_exactly_where_it_stopped(digits):
    cfg = small_config(epochs=4, seed=1)
    straight = make_trainer(digits, cfg).fit()

    first = make_trainer(digits, cfg)
    first.cfg.epochs = 2
    first.fit()
    state = first.state_dict()
    torch.manual_seed(999)  # whatever happens in between must not matter
    second = make_trainer(digits, small_config(epochs=4, seed=1))
    second.load_state_dict(state)
    resumed = second.fit()
    assert [r.train_objective for r in resumed] == [r.train_objective for r in straight]
    assert [r.val_elbo for r in resumed] == [r.val_elbo for r in straight]


def test_divergence_names_epoch_and_step(digits, monkeypatch):
    trainer = make_trainer(digits, small_config(epochs=2))
    _, _, elbo = trainer.objective(1.0)
    original = elbo.differentiable_loss
    calls = {"n": 0}

    def sometimes_nan(*args, **kwargs):
        calls["n"] += 1
        loss = original(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 13 else loss

    monkeypatch.setattr(elbo, "differentiable_loss", sometimes_nan)
    with pytest.raises(TrainingDivergedError, match=r"epoch 2, step 13.*epoch 1\) is intact"):
        trainer.fit()
    assert trainer.epoch == 1


def test_batch_larger_than_the_training_set_is_a_config_error(digits):
    with pytest.raises(ConfigError, match="larger than the 1197 training examples"):
        make_trainer(digits, small_config(batch_size=5000))


def test_heldout_elbo_is_reproducible_and_leaves_the_global_rng_alone(digits):
    vae = build_vae(ModelConfig(latent_dim=4, hidden=[16]), 64)
    x = eval_view(digits.val, digits.levels, "static", "val")
    torch.manual_seed(0)
    a = heldout_elbo(vae.model, vae.guide, x, 5)
    after_a = torch.rand(1)
    torch.manual_seed(0)
    b = heldout_elbo(vae.model, vae.guide, x, 5)
    after_b = torch.rand(1)
    assert a == b and torch.equal(after_a, after_b)
    assert a == pytest.approx(
        -Trace_ELBO(num_particles=5, vectorize_particles=True, max_plate_nesting=1).loss(
            vae.model, vae.guide, x
        )
        / len(x),
        rel=0.02,
    )


def test_jit_elbo_trains_and_handles_a_short_last_batch(digits):
    history = make_trainer(digits, small_config(epochs=2, jit=True)).fit()
    assert history[-1].steps == 20 and history[-1].val_elbo > -60


@pytest.mark.filterwarnings("ignore:`torch.jit.trace` is deprecated:FutureWarning")  # Pyro's own
def test_jit_loss_has_the_same_expectation_at_another_batch_size():
    """The JIT graph traced at batch 16 must rescale correctly at batch 10 (N / B is dynamic)."""
    vae = build_vae(ModelConfig(latent_dim=5, hidden=[32]), 64)
    x = torch.bernoulli(torch.full((16, 64), 0.3), generator=torch.Generator().manual_seed(0))
    jit = JitTrace_ELBO(ignore_jit_warnings=True)
    jit.differentiable_loss(vae.model, vae.guide, x, num_data=100)  # compiled at B = 16
    xb = x[:10]
    a, b = [], []
    for seed in range(200):
        pyro.set_rng_seed(seed)
        a.append(jit.differentiable_loss(vae.model, vae.guide, xb, num_data=100).item())
        pyro.set_rng_seed(seed)
        b.append(Trace_ELBO().differentiable_loss(vae.model, vae.guide, xb, num_data=100).item())
    se = (statistics.variance(a) / len(a) + statistics.variance(b) / len(b)) ** 0.5
    assert abs(statistics.mean(a) - statistics.mean(b)) < 5 * se


def test_make_optimizer_takes_a_generator_and_keeps_every_parameter(monkeypatch):
    from pyro_vae.infer.training import make_optimizer

    vae = build_vae(ModelConfig(latent_dim=3, hidden=[8]), 16)
    n_params = len(list(vae.parameters()))
    assert len(make_optimizer(vae.parameters(), 1e-3).param_groups[0]["params"]) == n_params

    real_adam = torch.optim.Adam

    def no_fused(params, lr, **kwargs):  # a PyTorch without fused Adam on this device
        if kwargs.get("fused"):
            raise RuntimeError("fused=True is not supported here")
        return real_adam(params, lr=lr, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", no_fused)
    fallback = make_optimizer(vae.parameters(), 1e-3)
    assert len(fallback.param_groups[0]["params"]) == n_params


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(
    "pixels,likelihood",
    [
        ("dynamic", "bernoulli"),
        ("static", "bernoulli"),
        ("grey", "bernoulli"),
        ("dequantized", "gaussian-learned"),
    ],
)
def test_cuda_training_and_evaluation_for_every_pixel_scheme(digits, pixels, likelihood):
    from pyro_vae.infer.marginal import log_marginal

    cfg = small_config(epochs=2, device="cuda")
    cfg.data.pixels, cfg.model.likelihood = pixels, likelihood
    pyro.set_rng_seed(0)
    vae = build_vae(cfg.model, digits.data_dim, pixels)
    trainer = Trainer(vae, cfg.train, digits, pixels=pixels, progress=False)
    history = trainer.fit()
    assert all(math.isfinite(r.val_elbo) for r in history)
    assert next(vae.parameters()).is_cuda
    x = eval_view(digits.test, digits.levels, pixels, "test").cuda()
    assert math.isfinite(log_marginal(vae.model, vae.guide, x, 64, seed=0).summary().log_px)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_on_tensor_data():
    from pyro_vae.infer.training import TensorData

    cfg = small_config(epochs=2, device="cuda", batch_size=50)
    cfg.model.likelihood = "gaussian-learned"
    vae = build_vae(cfg.model, 2, "dequantized")
    data = TensorData(torch.rand(200, 2), torch.rand(50, 2))
    history = Trainer(vae, cfg.train, data, progress=False).fit()
    assert data.val.is_cuda and math.isfinite(history[-1].val_elbo)


def test_tensor_data_trains_on_plain_tensors():
    from pyro_vae.infer.training import TensorData

    cfg = small_config(epochs=3, batch_size=50)
    cfg.model.likelihood = "gaussian-learned"
    pyro.set_rng_seed(0)
    vae = build_vae(cfg.model, 2, "dequantized")
    g = torch.Generator().manual_seed(0)
    data = TensorData(torch.rand(200, 2, generator=g), torch.rand(50, 2, generator=g), "square")
    history = Trainer(vae, cfg.train, data, progress=False).fit()
    assert [r.examples_seen for r in history] == [200, 400, 600]
    assert history[-1].val_elbo > history[0].val_elbo
    with pytest.raises(DataFormatError, match="3 dimensions but the model expects 2"):
        TensorData(torch.rand(10, 2), torch.rand(5, 3))
