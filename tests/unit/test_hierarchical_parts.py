"""The hierarchical VAE with top-down inference (``--prior hierarchical[-vamp] --guide
top-down``, :mod:`pyro_vae.model.hierarchical`): its densities are the products of their layers
and normalized, the estimators recover a log p(x) computed by quadrature, every objective
trains it, the compiled ELBO's graph equals the eager one, and the pairs that would be cliffs
are refused."""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from helpers import eager_and_traced_elbo
from pyro.infer import Trace_ELBO

from pyro_vae import ConfigError, ModelConfig, RunConfig, Trainer, build_vae, resolve
from pyro_vae.infer.ais import log_marginal_ais
from pyro_vae.infer.marginal import log_marginal
from pyro_vae.model.hierarchical import HierarchicalVampPrior, TopDown, TopDownGuide, split_dims

D = 4
X = torch.tensor(
    [[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]], dtype=torch.float64
)


def _tiny(prior: str = "hierarchical-vamp", **model) -> torch.nn.Module:
    """A float64 VAE with z1 and z2 of one dimension each on D = 4 binary pixels."""
    torch.manual_seed(1)
    kwargs = {"pseudo_inputs": 3} if prior.endswith("vamp") else {}
    cfg = ModelConfig(
        latent_dim=2, hidden=[6], prior=prior, guide="top-down", prior_kwargs=kwargs, **model
    )
    cfg.guide_kwargs = {"top_hidden": [5], "context_dim": 3}
    return build_vae(cfg, D, "dynamic").double()


GRID = torch.linspace(-9.0, 9.0, 721, dtype=torch.float64)
STEP = (GRID[1] - GRID[0]).item()


def _grid_points() -> torch.Tensor:
    """Every (z1, z2) of the grid: ``[G * G, 2]``."""
    z1, z2 = torch.meshgrid(GRID, GRID, indexing="ij")
    return torch.stack([z1.reshape(-1), z2.reshape(-1)], -1)


@torch.no_grad()
def _log_px_by_quadrature(vae) -> torch.Tensor:
    """log p(x) = log int int p(z2) p(z1 | z2) p(x | z1, z2) dz1 dz2, each layer's density
    computed from its own parts (the VampPrior's components, the conditional network), not
    from the joint distribution under test."""
    z = _grid_points()
    z1, z2 = z[:, :1], z[:, 1:]
    prior = vae.prior
    top = vae.encoder.top_posterior(prior.vamp.pseudo_inputs)  # q(z2 | u_k), K components
    log_top = (top.base_dist.log_prob(z2[:, None, :]).sum(-1)).logsumexp(-1) - math.log(3)
    loc, raw = prior.conditional(z2).chunk(2, -1)
    log_lower = dist.Normal(loc, torch.nn.functional.softplus(raw) + 1e-3).log_prob(z1).sum(-1)
    logits = vae.decoder(z)  # [G*G, D]
    log_lik = dist.Bernoulli(logits=logits[:, None, :]).log_prob(X).sum(-1)  # [G*G, B]
    joint = log_top + log_lower
    return (joint[:, None] + log_lik).logsumexp(0) + 2 * math.log(STEP)


def test_the_joint_density_is_the_product_of_its_layers():
    top = dist.Normal(torch.zeros(5, 2), 1.0).to_event(1)
    w = torch.tensor([[0.5, -1.0], [2.0, 0.3], [0.1, 0.2]])

    def lower(z2):
        return dist.Normal(z2 @ w.T, 0.5).to_event(1)

    d = TopDown(top, lower, 3)
    assert d.batch_shape == (5,) and d.event_shape == (5,) and d.has_rsample
    z = d.rsample((7,))
    assert z.shape == (7, 5, 5)
    expected = top.log_prob(z[..., 3:]) + lower(z[..., 3:]).log_prob(z[..., :3])
    torch.testing.assert_close(d.log_prob(z), expected)
    assert d.expand((4, 5)).rsample().shape == (4, 5, 5)
    with pytest.raises(NotImplementedError):
        d.mean  # noqa: B018  (no closed form: the library falls back to samples)


def test_the_guides_density_is_normalized_and_its_samples_follow_it():
    """q(z | x) integrates to 1 over the grid (for each x), and the mean of its draws matches
    the mean the grid gives within 4 standard errors."""
    vae = _tiny()
    with torch.no_grad():
        q = vae.encoder(X)
        log_q = q.log_prob(_grid_points()[:, None, :])  # [G*G, B]
        mass = (log_q.logsumexp(0) + 2 * math.log(STEP)).exp()
        torch.testing.assert_close(mass, torch.ones(len(X), dtype=torch.float64), atol=1e-6, rtol=0)
        grid_mean = (log_q.exp()[..., None] * _grid_points()[:, None, :]).sum(0) * STEP**2
        torch.manual_seed(0)
        draws = q.sample((20_000,))
        se = draws.std(0) / math.sqrt(len(draws))
        assert ((draws.mean(0) - grid_mean).abs() < 4 * se).all()


def test_ais_recovers_log_px_by_quadrature_and_importance_sampling_stays_below_it():
    """AIS (T = 200, 32 chains) from the prior and from the top-down guide recovers the
    quadrature's log p(x) within 4 Monte Carlo standard errors: the joint prior and guide
    densities are right. Importance sampling from this untrained guide (K = 2,000) is a lower
    bound in expectation: never above the truth by more than 4 standard errors."""
    vae = _tiny()
    truth = _log_px_by_quadrature(vae)
    for start in ("prior", "guide"):
        ais = log_marginal_ais(
            vae.model, vae.guide, X, num_steps=200, num_chains=32, seed=0, start=start
        )
        assert ((ais.log_px - truth).abs() < 4 * ais.mc_se).all(), (start, ais.log_px, truth)
    est = log_marginal(vae.model, vae.guide, X, 2000, seed=0)
    assert (est.log_px < truth + 4 * est.mc_se).all(), (est.log_px, truth)


@pytest.mark.parametrize("elbo", ["trace", "iwae", "iwae-dreg"])
@pytest.mark.parametrize("prior", ["hierarchical", "hierarchical-vamp"])
def test_every_objective_trains_the_hierarchical_model(digits, prior, elbo):
    cfg = RunConfig()
    cfg.model.prior, cfg.model.guide = prior, "top-down"
    cfg.model.hidden, cfg.model.latent_dim = [32], 4
    if prior == "hierarchical-vamp":
        cfg.model.prior_kwargs = {"pseudo_inputs": 10}
    cfg.train.elbo, cfg.train.batch_size = elbo, 100
    if elbo != "trace":
        cfg.train.particles = 3
    cfg = resolve(cfg)
    pyro.set_rng_seed(0)
    vae = build_vae(cfg.model, digits.data_dim, cfg.data.pixels)
    trainer = Trainer(vae, cfg.train, digits, device=torch.device("cpu"), progress=False)
    x = trainer.data.epoch()[:100]
    losses = [trainer.step(x) for _ in range(30)]
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-5:]) < sum(losses[:5])


def test_the_compiled_elbos_traced_graph_equals_the_eager_elbo():
    """``--elbo compiled``: the graph ``make_fx`` records through the two layers (run as
    traced, not handed to Inductor; recorded, then run) gives the eager loss and gradients with
    the same noise."""
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=[32], latent_dim=6, prior="hierarchical-vamp", guide="top-down")
    cfg.prior_kwargs = {"pseudo_inputs": 5}
    vae = build_vae(cfg, 64)
    vae.register_parameters = False
    x = torch.bernoulli(torch.rand(40, 64, generator=torch.Generator().manual_seed(1)))
    eager, traced, compiled, graphs = eager_and_traced_elbo(vae, x)
    assert len(graphs) == 1 and compiled.failed is None
    torch.testing.assert_close(traced[0], eager[0], rtol=1e-5, atol=1e-3)
    for g_traced, g_eager in zip(traced[1], eager[1], strict=True):
        torch.testing.assert_close(g_traced, g_eager, rtol=1e-4, atol=1e-5)


def test_the_layers_split_the_code_and_bad_sizes_are_refused():
    assert split_dims(40, None) == (20, 20) and split_dims(5, None) == (3, 2)
    assert split_dims(5, 4) == (1, 4)
    for bad in (0, 5, 2.0, True):
        with pytest.raises(
            ValueError, match="top_dim must be an integer from 1 to latent_dim - 1 = 4"
        ):
            split_dims(5, bad)
    with pytest.raises(ValueError, match="two layers need latent_dim >= 2"):
        TopDownGuide(64, 1)


def test_the_hierarchical_vamp_prior_needs_the_top_down_guide_of_its_size():
    prior = HierarchicalVampPrior(6, 64, 3, top_dim=2)
    with pytest.raises(ConfigError, match="use --guide top-down"):
        resolve(_config("hierarchical-vamp", "diagonal"))
    with pytest.raises(ConfigError, match="top layer has 2 dimensions, the guide's 3"):
        prior.attach_guide(TopDownGuide(64, 6))
    prior.attach_guide(TopDownGuide(64, 6, top_dim=2))


def test_the_plain_vamp_prior_refuses_the_top_down_guide_naming_the_hierarchical_one():
    with pytest.raises(ConfigError) as caught:
        resolve(_config("vamp", "top-down"))
    message = str(caught.value)
    assert "\n" not in message and "use --prior hierarchical-vamp with --guide top-down" in message


def _config(prior: str, guide: str) -> RunConfig:
    cfg = RunConfig()
    cfg.model.prior, cfg.model.guide, cfg.model.latent_dim, cfg.model.hidden = prior, guide, 4, [8]
    return cfg


def test_figures_codes_come_from_samples_and_the_two_layer_vamp_prior_takes_the_guide():
    """No closed-form posterior mean: reconstructions and latent means use draws; the Burda-
    order two-layer VampPrior reads a representative code from the top-down guide."""
    vae = _tiny()
    with torch.no_grad():
        assert vae.reconstruct(X).shape == X.shape
        assert vae.posterior_means(X).shape == (len(X), 2)
        assert vae.sample(5).shape == (5, D)
    other = _tiny(prior="two-layer-vamp")
    loss = Trace_ELBO().differentiable_loss(other.model, other.guide, X)
    assert torch.isfinite(loss)
