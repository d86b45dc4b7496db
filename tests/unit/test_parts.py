"""Each swappable part against an independent computation; every combination trains."""

from __future__ import annotations

import itertools
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
import torch.nn.functional as F
from torch.autograd.functional import jacobian

from pyro_vae import (
    ModelConfig,
    RunConfig,
    Trainer,
    build_part,
    build_vae,
    log_importance_weights,
    resolve,
)
from pyro_vae.model.guides import GUIDES, DiagonalGaussianGuide, FlowGuide, FullCovarianceGuide
from pyro_vae.model.likelihoods import (
    LIKELIHOODS,
    BernoulliLikelihood,
    GaussianLikelihood,
    LearnedGaussianLikelihood,
)
from pyro_vae.model.priors import (
    PRIORS,
    LearnedGaussianPrior,
    MixtureOfGaussiansPrior,
    StandardNormalPrior,
    VampPrior,
)

B, D, K = 6, 12, 3


def x_batch(seed=0):
    return torch.rand(B, D, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------ guides


@pytest.mark.parametrize("name", sorted(GUIDES))
def test_guides_are_reparameterized_with_the_right_shapes(name):
    cfg = RunConfig().model
    cfg.latent_dim, cfg.hidden = K, [16]
    guide = build_part("guide", name, {}, {"data_dim": D, "latent_dim": K, "hidden": [16]})
    q = guide(x_batch())
    assert q.batch_shape == (B,) and q.event_shape == (K,) and q.has_rsample
    z = q.rsample((5,))
    assert z.shape == (5, B, K)
    z.sum().backward()
    assert all(p.grad is not None for p in guide.parameters() if p.requires_grad)
    assert q.log_prob(z).shape == (5, B)


def test_diagonal_guide_density_matches_the_formula():
    guide = DiagonalGaussianGuide(D, K, [16])
    x = x_batch()
    q = guide(x)
    z = q.sample()
    loc, raw = guide.net(x).chunk(2, -1)
    scale = F.softplus(raw) + guide.min_scale
    manual = (-0.5 * ((z - loc) / scale) ** 2 - scale.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
    assert torch.allclose(q.log_prob(z), manual, atol=1e-5)


@pytest.mark.parametrize("parameterization", ["relative", "absolute"])
def test_full_covariance_guide_against_torch_multivariate_normal(parameterization):
    guide = FullCovarianceGuide(D, K, [16], parameterization=parameterization)
    with torch.no_grad():  # correlations away from the relative form's zero start
        guide.net[-1].weight.normal_(0.0, 0.5)
    x = x_batch()
    q = guide(x)
    tril = q.scale_tril
    assert torch.all(tril.triu(1) == 0) and torch.all(tril.diagonal(dim1=-2, dim2=-1) > 0)
    assert (tril.tril(-1) != 0).any()  # correlations are there
    covariance = tril @ tril.transpose(-1, -2)  # an independent parameterization
    reference = torch.distributions.MultivariateNormal(q.loc, covariance_matrix=covariance)
    z = q.sample((4,))
    assert torch.allclose(q.log_prob(z), reference.log_prob(z), atol=1e-4)


def test_relative_full_covariance_guide_starts_as_the_diagonal_guide():
    torch.manual_seed(0)
    full = FullCovarianceGuide(D, K, [16])
    diagonal = DiagonalGaussianGuide(D, K, [16])
    with torch.no_grad():  # the same network for mean and scales
        diagonal.net[0].load_state_dict(full.net[0].state_dict())
        diagonal.net[-1].weight.copy_(full.net[-1].weight[: 2 * K])
        diagonal.net[-1].bias.copy_(full.net[-1].bias[: 2 * K])
    x = x_batch()
    q_full, q_diag = full(x), diagonal(x)
    assert torch.all(q_full.scale_tril.tril(-1) == 0)
    z = q_diag.sample((5,))
    assert torch.allclose(q_full.log_prob(z), q_diag.log_prob(z), atol=1e-5)
    row = full.off_diagonal_scale * full.net(x)[..., 2 * K :]  # then M = c * outputs, relative
    with torch.no_grad():
        full.net[-1].bias[2 * K :].fill_(1.0)
    tril = full(x).scale_tril
    sigma = tril.diagonal(dim1=-2, dim2=-1)
    assert torch.allclose(tril[..., 1, 0], sigma[..., 1] * (row[..., 0] + 0.1), atol=1e-6)


def test_two_layer_prior_has_both_latent_sites_in_the_data_plate():
    vae = build_vae(
        ModelConfig(latent_dim=K, hidden=[16], prior="two-layer", prior_kwargs={"top_dim": 2}), D
    )
    x = (torch.rand(B, D) < 0.5).float()
    pyro.set_rng_seed(3)
    guide_trace = pyro.poutine.trace(vae.guide).get_trace(x)
    model_trace = pyro.poutine.trace(pyro.poutine.replay(vae.model, guide_trace)).get_trace(x)
    for trace in (guide_trace, model_trace):
        assert trace.nodes["z"]["value"].shape == (B, K)
        assert trace.nodes["z2"]["value"].shape == (B, 2)
        for name in ("z", "z2"):
            assert [f.name for f in trace.nodes[name]["cond_indep_stack"]] == ["data"]
    model_trace.compute_log_prob()
    guide_trace.compute_log_prob()
    expected = sum(model_trace.nodes[n]["log_prob"] for n in ("x", "z", "z2")) - sum(
        guide_trace.nodes[n]["log_prob"] for n in ("z", "z2")
    )
    # the estimator's log-weights sum both latent sites: the same draws give the same weights
    pyro.set_rng_seed(3)
    log_w = log_importance_weights(vae.model, vae.guide, x, 1, max_plate_nesting=1)
    assert torch.allclose(log_w[0], expected, atol=1e-5)
    assert vae.sample(5).shape == (5, D) and vae.latent_dim == K
    with pytest.raises(NotImplementedError, match="no closed form"):
        vae.prior()


@pytest.mark.parametrize("guide", ["diagonal", "flow"])
def test_two_layer_vamp_prior_tops_with_the_guides_posteriors_at_pseudo_inputs(guide):
    """p(z2) = (1/M) sum_m N(z2; m(c_m), diag s(c_m)^2), c_m the guide's code at pseudo-input
    u_m: its mean, or a flow's base mean pushed through the flow; computed here directly."""
    pyro.set_rng_seed(0)
    cfg = ModelConfig(
        latent_dim=K,
        hidden=[16],
        prior="two-layer-vamp",
        guide=guide,
        prior_kwargs={"pseudo_inputs": 4, "top_dim": 2, "top_hidden": [8]},
    )
    vae = build_vae(cfg, D)
    prior = vae.prior
    q = vae.encoder(prior.vamp.pseudo_inputs)
    if guide == "diagonal":
        codes = q.mean
    else:
        codes = q.base_dist.mean
        for t in q.transforms:
            codes = t(codes)
    loc, raw = prior.top_encoder(codes).chunk(2, -1)
    components = dist.Normal(loc, F.softplus(raw) + 1e-3)
    z2 = torch.randn(5, 2)
    expected = torch.logsumexp(components.log_prob(z2[:, None, :]).sum(-1), -1) - math.log(4)
    assert torch.allclose(prior.top().log_prob(z2), expected, atol=1e-5)
    # the pseudo-inputs and the encoder reach log p(z2): the encoder is part of the prior
    prior.top().log_prob(z2).sum().backward()
    assert prior.vamp.pseudo_logits.grad.abs().sum() > 0
    assert all(p.grad is not None for p in vae.encoder.parameters())
    assert vae.sample(3).shape == (3, D)


@pytest.mark.parametrize("flow_type", ["iaf", "planar"])
def test_flow_log_det_against_autograd_jacobian(flow_type):
    torch.manual_seed(0)
    guide = FlowGuide(D, K, [16], flows=3, flow_type=flow_type)
    x = x_batch()[:1]
    q = guide(x)
    base, transforms = q.base_dist, q.transforms
    z0 = base.sample()[0]  # one point, [K]

    def push(v):
        for t in transforms:
            v = t(v)
        return v

    z0_ = z0.unsqueeze(0)
    log_det = torch.zeros(())
    v = z0_
    for t in transforms:
        y = t(v)
        log_det = log_det + t.log_abs_det_jacobian(v, y).sum()
        v = y
    # the density is the base density minus that log-determinant (planar flows can only
    # evaluate it at their own, cached, outputs: before anything else calls them)
    assert torch.allclose(q.log_prob(v), base.log_prob(z0_) - log_det, atol=1e-4)
    jac = jacobian(lambda u: push(u.unsqueeze(0))[0], z0)
    assert torch.allclose(log_det, torch.linalg.slogdet(jac).logabsdet, atol=1e-4)


def test_flow_changes_the_density_of_the_base():
    torch.manual_seed(0)
    guide = FlowGuide(D, K, [16], flows=2)
    q = guide(x_batch())
    z = q.rsample()
    assert not torch.allclose(q.log_prob(z), q.base_dist.log_prob(z))


# ------------------------------------------------------------------------------ priors


def test_standard_and_learned_gaussian_priors():
    for prior in (StandardNormalPrior(K), LearnedGaussianPrior(K)):
        p = prior()
        assert p.batch_shape == () and p.event_shape == (K,)
        z = torch.randn(7, K)
        manual = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(-1)  # init: N(0, I)
        assert torch.allclose(p.log_prob(z), manual, atol=1e-3)
    learned = LearnedGaussianPrior(K)
    assert {n for n, _ in learned.named_parameters()} == {"loc", "raw_scale"}


def test_mixture_prior_against_an_explicit_sum():
    torch.manual_seed(0)
    prior = MixtureOfGaussiansPrior(K, components=4)
    p = prior()
    assert p.batch_shape == () and p.event_shape == (K,)
    z = torch.randn(9, K) * 2
    weights = torch.softmax(prior.logits, 0)
    scales = F.softplus(prior.raw_scales) + 1e-4
    per_component = torch.stack(
        [dist.Normal(prior.locs[k], scales[k]).log_prob(z).sum(-1) for k in range(4)], -1
    )
    manual = torch.logsumexp(per_component + weights.log(), -1)
    assert torch.allclose(p.log_prob(z), manual, atol=1e-5)
    assert not p.has_rsample  # fine for a prior


@pytest.mark.parametrize("guide_name", ["diagonal", "full"])  # a flow: refused (test_grid_pairs)
def test_vamp_prior_is_the_average_of_the_guide_at_pseudo_inputs(guide_name):
    torch.manual_seed(0)
    cfg = RunConfig().model
    cfg.latent_dim, cfg.hidden = K, [16]
    guide = build_part("guide", guide_name, {}, {"data_dim": D, "latent_dim": K, "hidden": [16]})
    prior = VampPrior(K, D, pseudo_inputs=5)
    prior.attach_guide(guide)
    p = prior()
    assert p.batch_shape == () and p.event_shape == (K,)
    z = torch.randn(4, K)
    q_u = guide(prior.pseudo_inputs)
    manual = torch.stack([q_u.log_prob(zi.expand(5, K)) for zi in z])  # [4, 5]
    manual = torch.logsumexp(manual, -1) - math.log(5)
    assert torch.allclose(p.log_prob(z), manual, atol=1e-4)
    # the guide is not a sub-module of the prior: its parameters are not registered twice
    assert [n for n, _ in prior.named_parameters()] == ["pseudo_logits"]


def _vamp_mixture(loc: torch.Tensor, scale: torch.Tensor, matmul: bool):
    from pyro_vae.model.vamp import _MixtureOfPosteriors

    mixture = _MixtureOfPosteriors(
        dist.Categorical(logits=torch.zeros(loc.shape[:-1], dtype=loc.dtype)),
        dist.Normal(loc, scale).to_event(1),
    )
    mixture.matmul_density = matmul
    return mixture


@pytest.mark.parametrize("smallest_scale", [0.01, 0.3])
def test_vamp_matrix_product_density_is_the_mixture_density_and_its_gradient(smallest_scale):
    """The matrix-product log-density equals MixtureSameFamily's (in float64, where rounding
    is out of the way), also for z near narrow components, and so do the gradients."""
    torch.manual_seed(0)
    k, d = 50, 6
    loc = (2 * torch.randn(k, d, dtype=torch.float64)).requires_grad_()
    scale = (0.5 * torch.rand(k, d, dtype=torch.float64) + smallest_scale).requires_grad_()
    near = loc[:4].detach() + scale[:4].detach() * torch.randn(8, 4, d, dtype=torch.float64)
    z = torch.cat([near.reshape(-1, d), 3 * torch.randn(32, d, dtype=torch.float64)])
    z.requires_grad_()
    fast = _vamp_mixture(loc, scale, True).log_prob(z)
    generic = _vamp_mixture(loc, scale, False).log_prob(z)
    assert fast.shape == generic.shape == (64,)
    assert torch.allclose(fast, generic, rtol=0, atol=1e-9)
    grads = [torch.autograd.grad(lp.sum(), [loc, scale, z]) for lp in (fast, generic)]
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-9)


def test_vamp_matrix_product_density_survives_pyro_plates():
    """Pyro's plates expand the prior to the batch (and particle) shape; the matrix-product
    path must still be taken there (else the speed-up silently vanishes in training) and
    agree with the generic path, in float32 within float32 rounding."""
    torch.manual_seed(0)
    loc, scale = torch.randn(30, K), torch.rand(30, K) + 0.1
    for matmul in (True, False):
        expanded = _vamp_mixture(loc, scale, matmul).expand((5, 3))
        assert (expanded._diagonal_components() is not None) == matmul
    z = torch.randn(5, 3, K)
    fast = _vamp_mixture(loc, scale, True).expand((5, 3)).log_prob(z)
    generic = _vamp_mixture(loc, scale, False).expand((5, 3)).log_prob(z)
    assert fast.shape == (5, 3)
    assert torch.allclose(fast, generic, rtol=1e-6, atol=1e-4)
    # one z broadcast over the batch shape, as MixtureSameFamily does
    one = _vamp_mixture(loc, scale, True).expand((5, 3)).log_prob(z[0, 0])
    assert one.shape == (5, 3) and torch.allclose(one, one[0, 0].expand(5, 3))


def test_vamp_prior_takes_the_matrix_product_path_in_an_iwae_trace():
    """Inside the VAE's model under vectorized IWAE particles, the VampPrior's site uses the
    fast path with the diagonal guide and the generic one with the full-covariance guide."""
    from pyro_vae.model.vamp import _MixtureOfPosteriors

    for guide, expected in (("diagonal", True), ("full", False)):
        cfg = ModelConfig(latent_dim=K, hidden=[16], prior="vamp", guide=guide)
        vae = build_vae(cfg, D, "dynamic")
        x = torch.bernoulli(torch.full((B, D), 0.5))
        with pyro.plate("particles", 3, dim=-2):
            guide_trace = pyro.poutine.trace(vae.guide).get_trace(x)
            trace = pyro.poutine.trace(pyro.poutine.replay(vae.model, guide_trace)).get_trace(x)
        fn = trace.nodes["z"]["fn"]
        assert isinstance(fn, _MixtureOfPosteriors)
        assert (fn._diagonal_components() is not None) == expected
        assert fn.log_prob(trace.nodes["z"]["value"]).shape == (3, B)


def test_vamp_prior_refuses_a_guide_without_a_density_everywhere():
    prior = VampPrior(K, D, 5)
    with pytest.raises(Exception, match="planar flows are not invertible"):
        prior.attach_guide(FlowGuide(D, K, [16], flow_type="planar"))


# ------------------------------------------------------------------------------ likelihoods


def test_bernoulli_likelihood_is_binary_cross_entropy():
    out = torch.randn(B, D)
    x = torch.bernoulli(torch.full((B, D), 0.5))
    lp = BernoulliLikelihood()(out).log_prob(x)
    assert torch.allclose(lp, -F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(-1))


def test_gaussian_likelihood_with_fixed_sigma_is_a_scaled_squared_error():
    out, x = torch.randn(B, D), torch.rand(B, D)
    lik = GaussianLikelihood(sigma=0.2)
    mean = torch.sigmoid(out)
    manual = (-((x - mean) ** 2) / (2 * 0.2**2)).sum(-1) - D * math.log(
        0.2 * math.sqrt(2 * math.pi)
    )
    assert torch.allclose(lik(out).log_prob(x), manual, atol=1e-4)
    assert lik.param_dim == 1 and lik.observes == "continuous"


def test_learned_sigma_is_bounded_away_from_zero():
    lik = LearnedGaussianLikelihood(min_sigma=0.01)
    assert lik.param_dim == 2
    out = torch.cat([torch.zeros(B, D), torch.full((B, D), -1e4)], -1)  # scale -> its floor
    p = lik(out)
    assert torch.allclose(p.base_dist.scale, torch.full((B, D), 0.01))
    x = torch.full((B, D), 0.5)  # a constant pixel exactly at the mean: density stays finite
    assert torch.isfinite(p.log_prob(x)).all()
    assert p.log_prob(x)[0] == pytest.approx(-D * math.log(0.01 * math.sqrt(2 * math.pi)))


# ------------------------------------------------------------------------------ all combinations
IMAGE_LIKELIHOODS = [n for n, c in LIKELIHOODS.items() if c.observes != "counts"]
"""The likelihoods that score digits (the count ones: tests/unit/test_count_likelihoods.py)."""


def _losses(prior: str, guide: str, likelihood: str, digits, steps: int = 40) -> list[float]:
    cfg = RunConfig()
    cfg.model.prior, cfg.model.guide, cfg.model.likelihood = prior, guide, likelihood
    cfg.model.hidden, cfg.model.latent_dim = [32], 4
    if prior in ("vamp", "two-layer-vamp", "hierarchical-vamp"):
        cfg.model.prior_kwargs = {"pseudo_inputs": 10}
    cfg.train.batch_size = 100
    cfg = resolve(cfg)
    pyro.set_rng_seed(0)
    vae = build_vae(cfg.model, digits.data_dim, cfg.data.pixels)
    trainer = Trainer(
        vae, cfg.train, digits, pixels=cfg.data.pixels, device=torch.device("cpu"), progress=False
    )
    from pyro_vae.data.pixels import train_view

    x = train_view(digits.train, digits.levels, cfg.data.pixels)[:100]
    return [trainer.step(x, validate=i == 0) for i in range(steps)]


@pytest.mark.parametrize(
    "prior,guide,likelihood",
    [  # the VampPrior refuses a flow guide, the hierarchical one all but the top-down guide
        # (tests/unit/test_grid_pairs.py)
        c
        for c in itertools.product(sorted(PRIORS), sorted(GUIDES), sorted(IMAGE_LIKELIHOODS))
        if c[:2] not in (("vamp", "flow"), ("vamp", "top-down"))
        and (c[0] != "hierarchical-vamp" or c[1] == "top-down")
    ],
)
def test_every_combination_trains_without_nan_and_its_loss_falls(prior, guide, likelihood, digits):
    losses = _losses(prior, guide, likelihood, digits)
    assert all(math.isfinite(v) for v in losses)
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < first, (first, last)
