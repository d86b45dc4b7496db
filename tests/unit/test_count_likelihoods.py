"""The count likelihoods (``poisson``, ``negative-binomial``): their log-probability against
scipy's, their samples against their moments, every estimator's log p(x) on a tiny model with a
1-D latent against a direct computation (a hand-written pmf and quadrature over z), training on
a generated count matrix, and the refusals of counts where they do not fit (issue 27)."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import scipy.stats
import torch
from helpers import exit_code, tiny
from pyro.distributions.torch_distribution import TorchDistributionMixin
from torch.distributions import constraints

from pyro_vae import ConfigError, DataFormatError, ModelConfig, RunConfig, Trainer, build_vae
from pyro_vae.config.builtins import builtin_observes
from pyro_vae.config.capabilities import pixels_problem
from pyro_vae.infer.ais import log_marginal_ais
from pyro_vae.infer.bdmc import bdmc, simulate
from pyro_vae.infer.marginal import log_marginal
from pyro_vae.infer.training import TensorData
from pyro_vae.model.likelihoods import (
    LIKELIHOODS,
    MIN_RATE,
    NegativeBinomialLikelihood,
    PoissonLikelihood,
)

COUNT_LIKELIHOODS = ("poisson", "negative-binomial")
D = 4  # features of the tiny model
THETA = torch.tensor([0.5, 2.0, 7.0, 30.0], dtype=torch.float64)  # the tiny NB's dispersions


# ---------------------------------------------------------------------------- the formulas
def poisson_logpmf(x: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """log Poisson(x; rate) by hand, summed over the last axis."""
    return (x * rate.log() - rate - torch.lgamma(x + 1)).sum(-1)


def nbinom_logpmf(x: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """log NB(x; mean mu, inverse dispersion theta) by hand, summed over the last axis."""
    log_total = (theta + mu).log()
    return (
        torch.lgamma(x + theta)
        - torch.lgamma(theta)
        - torch.lgamma(x + 1)
        + theta * (theta.log() - log_total)
        + x * (mu.log() - log_total)
    ).sum(-1)


def counts_and_outputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Counts from 0 to about 1000 and decoder outputs from -12 to 30, ``[50, 6]`` float64."""
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(50, 6, dtype=torch.float64).uniform_(-12, 30, generator=g)
    x = torch.poisson(torch.empty(50, 6, dtype=torch.float64).uniform_(0, 6, generator=g).exp())
    x[0] = 0.0
    return x, out


def test_poisson_log_prob_is_scipys_to_1e_6():
    x, out = counts_and_outputs()
    rate = np.logaddexp(0.0, out.numpy()) + MIN_RATE  # softplus(out) + min_rate
    expected = scipy.stats.poisson.logpmf(x.numpy(), rate).sum(-1)
    got = PoissonLikelihood()(out).log_prob(x)
    assert got.shape == (50,) and got.dtype == torch.float64
    assert np.abs(got.numpy() - expected).max() < 1e-6
    assert np.abs(poisson_logpmf(x, torch.from_numpy(rate)).numpy() - expected).max() < 1e-6


def test_negative_binomial_log_prob_is_scipys_and_exact_to_1e_6():
    """Against scipy (theta up to 300) and against the pmf in 40-digit arithmetic (mpmath) up to
    theta = 2e4, where scipy's own float64 lgamma difference is 1.2e-6 off and torch's 6e-10."""
    x, out = counts_and_outputs()
    lik = NegativeBinomialLikelihood(data_dim=6).double()
    theta = np.array([1e-3, 0.1, 1.0, 5.0, 300.0, 2e4])
    with torch.no_grad():
        lik.log_theta.copy_(torch.from_numpy(np.log(theta)))
    theta = lik.theta.detach().numpy()  # exp(log(theta)), as the part holds it
    mu = np.logaddexp(0.0, out.numpy()) + MIN_RATE
    got = lik(out).base_dist.log_prob(x).detach().numpy()
    assert lik(out).log_prob(x).shape == (50,)
    # scipy's nbinom(n, p): failures before n successes of probability p; mean n (1 - p) / p
    expected = scipy.stats.nbinom.logpmf(x.numpy(), theta, theta / (theta + mu))
    assert np.abs(got - expected)[:, :5].max() < 1e-6
    mpmath.mp.dps = 40
    exact = np.vectorize(
        lambda k, t, m: float(
            mpmath.loggamma(k + t)
            - mpmath.loggamma(t)
            - mpmath.loggamma(k + 1)
            + t * mpmath.log(t / (t + m))
            + k * mpmath.log(m / (t + m))
        )
    )(x.numpy(), theta, mu)
    assert np.abs(got - exact).max() < 1e-6
    by_hand = nbinom_logpmf(x, torch.from_numpy(mu), torch.from_numpy(theta)).numpy()
    assert np.abs(by_hand - exact.sum(-1)).max() < 1e-6


def test_samples_are_counts_with_the_likelihoods_mean_and_variance():
    """Draws are non-negative integers; their mean is mu and their variance mu (Poisson) or
    mu + mu^2 / theta (NB), within 4 standard errors over 40,000 draws."""
    out = torch.tensor([-3.0, 0.0, 1.5, 4.0], dtype=torch.float64)
    mu = torch.nn.functional.softplus(out) + MIN_RATE
    nb = NegativeBinomialLikelihood(data_dim=D).double()
    with torch.no_grad():
        nb.log_theta.copy_(THETA.log())
    n = 40_000
    torch.manual_seed(0)
    for lik, var in ((PoissonLikelihood(), mu), (nb, mu + mu**2 / THETA)):
        x = lik(out).sample((n,))
        assert x.shape == (n, D) and (x >= 0).all() and torch.equal(x, x.round())
        assert ((x.mean(0) - mu).abs() < 4 * (var / n).sqrt()).all(), (x.mean(0), mu)
        # the sample variance's standard error, from the fourth central moment
        m4 = ((x - x.mean(0)) ** 4).mean(0)
        assert ((x.var(0) - var).abs() < 4 * ((m4 - var**2) / n).sqrt()).all(), (x.var(0), var)


def test_the_names_of_the_counts_likelihoods_and_what_they_observe_are_declared_once():
    assert builtin_observes() == {n: cls.observes for n, cls in LIKELIHOODS.items()}
    assert {n for n, k in builtin_observes().items() if k == "counts"} == set(COUNT_LIKELIHOODS)
    for name in COUNT_LIKELIHOODS:
        assert LIKELIHOODS[name].param_dim == 1


# ---------------------------------------------------------------- a tiny model, exactly
class TinyCountModel:
    """A count VAE with a 1-D latent (z ~ N(0, 1), x_d | z from the likelihood ``name``) in
    float64, and log p(x) computed directly: log p(z) + the hand-written pmf on a grid of z,
    integrated by the trapezoidal rule."""

    grid = torch.linspace(-12.0, 12.0, 24_001, dtype=torch.float64)

    def __init__(self, name: str) -> None:
        torch.manual_seed(1)
        cfg = ModelConfig(latent_dim=1, hidden=[6], activation="tanh", prior="normal")
        cfg.likelihood = name
        self.vae = build_vae(cfg, D, "counts").double()
        if name == "negative-binomial":
            with torch.no_grad():
                self.vae.likelihood.log_theta.copy_(THETA.log())

    def log_lik(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) by the hand-written pmf: z ``[..., B]``, x ``[B, D]``."""
        mu = torch.nn.functional.softplus(self.vae.decoder(z.unsqueeze(-1))) + MIN_RATE
        if isinstance(self.vae.likelihood, PoissonLikelihood):
            return poisson_logpmf(x, mu)
        return nbinom_logpmf(x, mu, THETA)

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return dist.Normal(0.0, 1.0).log_prob(z) + self.log_lik(x, z)

    @torch.no_grad()
    def grid_log_joint(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x, z) at every grid point, ``[B, G]``."""
        return self.log_joint(x, self.grid.unsqueeze(-1).expand(-1, len(x))).T

    def log_px(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) by the trapezoidal rule on the grid (the tails beyond |z| = 12 are below
        e^-72)."""
        step = (self.grid[1] - self.grid[0]).item()
        log_w = torch.full_like(self.grid, math.log(step))
        log_w[[0, -1]] -= math.log(2.0)
        return torch.logsumexp(self.grid_log_joint(x) + log_w, -1)

    def exact_guide(self, x: torch.Tensor) -> None:
        with pyro.plate("data", len(x)):
            pyro.sample("z", ExactPosterior(self, x))


class ExactPosterior(dist.TorchDistribution):
    """p(z | x) of :class:`TinyCountModel` from the direct computation: its log density is
    log p(z) + log p(x | z) - log p(x) (hand-written pmf, quadrature), so every importance
    weight p(x, z) / q(z) is the quadrature's p(x) exactly when the model scores the likelihood
    exactly. Draws: by inverse CDF on the grid."""

    arg_constraints: dict = {}
    support = constraints.independent(constraints.real, 1)

    def __init__(self, tiny: TinyCountModel, x: torch.Tensor) -> None:
        self.tiny, self.x, self.log_px = tiny, x, tiny.log_px(x)
        super().__init__(x.shape[:-1], torch.Size([1]), validate_args=False)

    def expand(self, batch_shape, _instance=None):
        return TorchDistributionMixin.expand(self, batch_shape)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.tiny.log_joint(self.x, z.squeeze(-1)) - self.log_px

    def sample(self, sample_shape: tuple[int, ...] = ()) -> torch.Tensor:
        n = math.prod(sample_shape)
        grid = self.tiny.grid
        index = torch.multinomial(self.tiny.grid_log_joint(self.x).softmax(-1), n, True).T
        jitter = (torch.rand(index.shape, dtype=grid.dtype) - 0.5) * (grid[1] - grid[0])
        return (grid[index] + jitter).reshape(*sample_shape, *self.batch_shape, 1)


X_TINY = torch.tensor(
    [[0, 0, 0, 0], [3, 0, 12, 1], [40, 7, 0, 150]], dtype=torch.float64
)  # zeros, small counts, counts far from what the model expects


@pytest.fixture(scope="module", params=COUNT_LIKELIHOODS)
def tiny_model(request):
    return TinyCountModel(request.param)


def test_the_quadrature_is_converged(tiny_model):
    coarse = TinyCountModel.__new__(TinyCountModel)
    coarse.vae, coarse.grid = tiny_model.vae, TinyCountModel.grid[::4]
    assert (tiny_model.log_px(X_TINY) - coarse.log_px(X_TINY)).abs().max() < 1e-9


def test_importance_sampling_from_the_exact_posterior_equals_the_direct_computation(tiny_model):
    """log p(x) equals the direct computation to 1e-6: each weight p(x, z) / p(z | x) is
    constant only if the model's trace scores the likelihood as the hand-written pmf does."""
    truth = tiny_model.log_px(X_TINY)
    est = log_marginal(tiny_model.vae.model, tiny_model.exact_guide, X_TINY, 64, seed=0)
    assert (est.log_px - truth).abs().max() < 1e-6, (est.log_px, truth)
    assert (est.elbo - truth).abs().max() < 1e-6  # no spread at all: ELBO = log p(x)


def test_ais_from_the_exact_posterior_equals_the_direct_computation(tiny_model):
    truth = tiny_model.log_px(X_TINY)
    est = log_marginal_ais(
        tiny_model.vae.model, tiny_model.exact_guide, X_TINY, num_steps=5, num_chains=4
    )
    assert (est.log_px - truth).abs().max() < 1e-6, (est.log_px, truth)
    assert est.acceptance.min() > 0  # the chains moved: the weights did not depend on z


def test_importance_sampling_and_ais_with_the_vaes_own_guide_agree_with_quadrature(tiny_model):
    """With the untrained guide as proposal (IS, K = 2,000) and from the prior (AIS, T = 30, 8
    chains): within 4 Monte Carlo standard errors of the quadrature on the counts the model could
    have drawn; on counts far from them, IS's Pareto k-hat flags its own estimate."""
    vae, truth = tiny_model.vae, tiny_model.log_px(X_TINY)
    est = log_marginal(vae.model, vae.guide, X_TINY, 2000, seed=0)
    assert ((est.log_px - truth).abs() < 4 * est.mc_se)[:2].all(), (est.log_px, truth)
    assert est.khat[2] > 0.7
    ais = log_marginal_ais(
        vae.model, vae.guide, X_TINY[:2], num_steps=30, num_chains=8, start="prior", seed=0
    )
    assert ((ais.log_px - truth[:2]).abs() < 4 * ais.mc_se).all(), (ais.log_px, truth)


def test_bdmc_simulates_counts_and_brackets_the_direct_computation(tiny_model):
    vae = tiny_model.vae
    x_like = torch.zeros(30, D, dtype=torch.float64)
    x_sim, z_star = simulate(vae.model, vae.guide, x_like, seed=0)
    assert (x_sim >= 0).all() and torch.equal(x_sim, x_sim.round()) and x_sim.sum() > 0
    assert z_star.shape == (30, 1)
    result = bdmc(vae.model, vae.guide, x_like, num_steps=10, num_chains=4, num_samples=200)
    assert torch.equal(result.data, x_sim)
    truth = tiny_model.log_px(x_sim)
    lower, upper = result.forward, result.reverse
    assert (lower.log_px - truth).mean() < 3 * lower.summary().log_px_mc_se
    assert (upper.log_px - truth).mean() > -3 * upper.summary().log_px_mc_se
    assert torch.isfinite(result.importance.log_px).all()


# ------------------------------------------------------------------------------ training
def count_matrix(n: int = 300, d: int = 20, seed: int = 0) -> torch.Tensor:
    """Poisson draws from a rank-2 log-rate: ``[n, d]`` float32 counts."""
    g = torch.Generator().manual_seed(seed)
    log_rate = 1.0 + 0.5 * torch.randn(n, 2, generator=g) @ torch.randn(2, d, generator=g)
    return torch.poisson(log_rate.exp(), generator=g)


@pytest.mark.parametrize("name", COUNT_LIKELIHOODS)
def test_training_on_a_count_matrix_improves_the_elbo(name):
    x = count_matrix()
    cfg = RunConfig()
    cfg.model.likelihood, cfg.model.prior = name, "normal"
    cfg.model.hidden, cfg.model.latent_dim = [32], 2
    cfg.train.epochs, cfg.train.batch_size = 6, 60
    pyro.set_rng_seed(0)
    vae = build_vae(cfg.model, 20, "counts")
    data = TensorData(x[:240], x[240:], "counts")
    history = Trainer(vae, cfg.train, data, progress=False).fit()
    first, last = history[0].val_elbo, history[-1].val_elbo
    assert math.isfinite(last) and last > first + 10, [r.val_elbo for r in history]
    if name == "negative-binomial":  # the dispersions are the trainer's parameters too
        assert not torch.allclose(vae.likelihood.log_theta, torch.zeros(20))


def test_a_count_likelihood_refuses_values_that_are_not_counts():
    cfg = ModelConfig(latent_dim=2, hidden=[8], likelihood="poisson")
    vae = build_vae(cfg, 3, "counts")
    cfg = RunConfig().train
    cfg.batch_size = 1
    train = torch.tensor([[0.0, 1.0, 2.0], [1.0, 2.5, 0.0]])
    with pytest.raises(DataFormatError, match=r"not non-negative integers \(e.g. 2.5 at row 1"):
        Trainer(vae, cfg, TensorData(train, train[:1]), progress=False)
    with pytest.raises(
        DataFormatError, match=r"tensor data \(validation\): .* -1 at row 0, column 0"
    ):
        Trainer(vae, cfg, TensorData(train[:1], -train[1:]), progress=False)
    Trainer(vae, cfg, TensorData(train[:1], train[:1]), progress=False)  # counts: taken


# ------------------------------------------------------------------------------ refusals
@pytest.mark.parametrize("name", COUNT_LIKELIHOODS)
def test_a_count_likelihood_on_digits_is_refused_before_training(name, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert exit_code(["train", "--likelihood", name, *tiny(), "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert f"the likelihood {name!r} scores counts" in err and "--pixels counts" in err
    for other in ("bernoulli (--pixels dynamic or static)", "gaussian or gaussian-learned"):
        assert other in err
    assert len(err.strip().splitlines()) == 1
    assert not runs.exists() or not any(runs.iterdir())


def test_the_counts_scheme_is_refused_on_images_and_under_other_likelihoods(tmp_path, capsys):
    runs = tmp_path / "runs"
    argv = ["train", "--likelihood", "poisson", "--pixels", "counts", *tiny()]
    assert exit_code([*argv, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert "--pixels counts views count data, and the data set 'digits' holds images" in err
    assert not runs.exists() or not any(runs.iterdir())
    for name, kind in (("bernoulli", "unit"), ("gaussian", "continuous")):
        message = pixels_problem(name, kind, "counts")
        assert message == (
            f"the likelihood {name!r} cannot score counts (--pixels counts): use --likelihood "
            "poisson or negative-binomial (--pixels counts)"
        )
        with pytest.raises(ConfigError, match="use --likelihood poisson or negative-binomial"):
            build_vae(ModelConfig(latent_dim=2, hidden=[8], likelihood=name), 5, "counts")
    assert pixels_problem("poisson", "counts", "counts") is None
    for pixels in ("dynamic", "static", "grey", "dequantized"):
        assert "needs count data (--pixels counts)" in pixels_problem("poisson", "counts", pixels)
