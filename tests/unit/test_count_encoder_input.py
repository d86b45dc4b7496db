"""The encoder's input for counts (issue 27): as scVI does, the built-in guides see
log(1 + x) when the likelihood observes counts (``encoder_input``, ``--encoder-input``),
recorded in the configuration; a configuration that records none (a run written before) keeps
x as it is. Only the proposal changes: log p(x) of the same model is the same, and every
estimator still scores it exactly."""

from __future__ import annotations

import json
import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from helpers import exit_code

from pyro_vae import ModelConfig, RunConfig, build_vae
from pyro_vae.app.vae_build import set_encoder_input, settle
from pyro_vae.errors import ConfigError
from pyro_vae.infer.ais import log_marginal_ais
from pyro_vae.infer.marginal import log_marginal
from pyro_vae.model.guides import GUIDES
from pyro_vae.model.likelihoods import MIN_RATE
from pyro_vae.model.priors import TwoLayerVampPrior, VampPrior

D = 4
X = torch.tensor([[0, 0, 0, 0], [3, 0, 12, 1], [1, 5, 2, 9]], dtype=torch.float64)


# ------------------------------------------------------------------------ what the guide sees
@pytest.mark.parametrize("name", sorted(GUIDES))
def test_built_in_guides_see_log1p_of_the_counts_when_told(name):
    torch.manual_seed(0)
    guide = GUIDES[name](data_dim=D, latent_dim=2, hidden=(8,)).double()
    assert guide.input_transform == "as-is"
    torch.testing.assert_close(guide.local_parameters(X), guide.net(X))
    guide.input_transform = "log1p"
    params = guide.local_parameters(X)
    torch.testing.assert_close(params, guide.net(torch.log1p(X)))
    assert not torch.allclose(params, guide.net(X))  # the counts 12 and 9 are not their log
    # refining q per point (--gaps, --refine) starts from the same parameters as guide(x)
    z = guide(X).sample()
    torch.testing.assert_close(guide.family(params).log_prob(z), guide(X).log_prob(z))


def _settled(likelihood: str, given: str | None = None) -> RunConfig:
    cfg = RunConfig()
    cfg.model.likelihood, cfg.model.encoder_input = likelihood, given
    if likelihood in ("poisson", "negative-binomial"):  # as a count matrix's run records it
        cfg.data.dataset, cfg.data.data_kind = "/data/counts.npy", "counts"
        cfg.data.data_sha256, cfg.data.data_shape = "0" * 64, [D]
    return settle(cfg)


@pytest.mark.parametrize(
    "likelihood,given,expected",
    [
        ("poisson", None, "log1p"),
        ("negative-binomial", None, "log1p"),
        ("poisson", "as-is", "as-is"),
        ("bernoulli", None, "as-is"),
        ("gaussian", "log1p", "log1p"),
    ],
)
def test_the_default_follows_the_likelihood_and_is_recorded(likelihood, given, expected):
    cfg = _settled(likelihood, given)
    assert cfg.model.encoder_input == expected
    written = cfg.to_dict()
    # "as-is" is left out: a named data set's Bernoulli run writes what it always did
    assert ("encoder_input" in written["model"]) == (expected != "as-is")
    again = RunConfig.from_dict(json.loads(json.dumps(written)))
    assert again.model.encoder_input == expected and settle(again) == cfg
    vae = build_vae(cfg.model, D, cfg.data.pixels)
    assert vae.encoder.input_transform == expected


def test_a_run_that_recorded_none_keeps_the_encoder_it_was_trained_with(tmp_path):
    """A count run written before the setting: its config.json has no encoder_input."""
    cfg = _settled("poisson")
    written = cfg.to_dict()
    del written["model"]["encoder_input"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(written))
    old = RunConfig.load(path)
    assert old.model.encoder_input == "as-is" and settle(old).model.encoder_input == "as-is"
    assert build_vae(old.model, D, "counts").encoder.input_transform == "as-is"
    assert RunConfig().model.encoder_input is None  # a new run's: the likelihood's default


def test_a_guide_that_cannot_see_log1p_is_refused():
    class Plain(torch.nn.Module):  # a duck-typed guide: no encoder_input to honour log1p
        def forward(self, x: torch.Tensor) -> dist.Distribution:
            return dist.Normal(x[..., :2], 1.0).to_event(1)

    set_encoder_input(Plain(), "as-is")
    with pytest.raises(ConfigError, match="cannot see log"):
        set_encoder_input(Plain(), "log1p")


def test_the_option_is_refused_with_one_line_when_unknown(tmp_path, capsys):
    argv = ["train", "--encoder-input", "sqrt", "--runs-dir", str(tmp_path)]
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert "--encoder-input" in err and "log1p" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------------ pseudo-inputs
def test_pseudo_inputs_are_counts_whose_log1p_spans_the_encoders_inputs():
    """Under log1p a pseudo-input u_k = exp(a_k) (positive "counts"): the encoder sees
    log(1 + u_k) = softplus(a_k), any non-negative value, as log(1 + x) of real counts are;
    as-is, u_k = sigmoid(a_k) in [0, 1] as for images."""
    torch.manual_seed(0)
    for prior_cls in (VampPrior, TwoLayerVampPrior):
        prior = "vamp" if prior_cls is VampPrior else "two-layer-vamp"
        cfg = ModelConfig(latent_dim=2, hidden=[8], prior=prior, guide="full")
        cfg.likelihood, cfg.prior_kwargs = "poisson", {"pseudo_inputs": 5}
        for transform in ("as-is", "log1p"):
            cfg.encoder_input = transform
            vae = build_vae(cfg, D, "counts")
            vamp = vae.prior if prior_cls is VampPrior else vae.prior.vamp
            a = vamp.pseudo_logits
            with torch.no_grad():
                a[0, 0] = 4.0  # a pseudo-input's count of e^4 = 55 is allowed under log1p
            u = vamp.pseudo_inputs
            if transform == "log1p":
                torch.testing.assert_close(u, a.exp())
                torch.testing.assert_close(torch.log1p(u), torch.nn.functional.softplus(a))
            else:
                torch.testing.assert_close(u, torch.sigmoid(a))
            # the prior's density comes from the guide at the pseudo-inputs, as seen by it
            q = vae.encoder(u)
            torch.testing.assert_close(
                q.mean, vae.encoder.family(vae.encoder.net(vae.encoder.encoder_input(u))).mean
            )


# ----------------------------------------------------------------------- exactly scored
class TinyPoisson:
    """A Poisson VAE with a 1-D latent in float64 and log p(x) by quadrature over z."""

    grid = torch.linspace(-12.0, 12.0, 12_001, dtype=torch.float64)

    def __init__(self, transform: str) -> None:
        torch.manual_seed(1)
        cfg = ModelConfig(latent_dim=1, hidden=[6], activation="tanh", prior="normal")
        cfg.likelihood, cfg.encoder_input = "poisson", transform
        self.vae = build_vae(cfg, D, "counts").double()

    @torch.no_grad()
    def log_px(self, x: torch.Tensor) -> torch.Tensor:
        z = self.grid.unsqueeze(-1)
        rate = torch.nn.functional.softplus(self.vae.decoder(z)) + MIN_RATE  # [G, D]
        log_lik = (x[:, None] * rate.log() - rate - torch.lgamma(x[:, None] + 1)).sum(-1)
        log_joint = dist.Normal(0.0, 1.0).log_prob(self.grid) + log_lik  # [B, G]
        step = (self.grid[1] - self.grid[0]).item()
        log_w = torch.full_like(self.grid, math.log(step))
        log_w[[0, -1]] -= math.log(2.0)
        return torch.logsumexp(log_joint + log_w, -1)


def test_with_and_without_log1p_the_same_model_is_scored_exactly():
    """The transform changes q only: the model (same weights) has the same log p(x), and IS
    (K = 2,000) and AIS (T = 30, 8 chains, from the guide) with either proposal agree with the
    quadrature within 4 Monte Carlo standard errors."""
    plain, logged = TinyPoisson("as-is"), TinyPoisson("log1p")
    for a, b in zip(plain.vae.state_dict().values(), logged.vae.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # the same weights: only what the encoder sees differs
    truth = plain.log_px(X)
    torch.testing.assert_close(logged.log_px(X), truth, rtol=0, atol=0)
    q_plain, q_logged = plain.vae.encoder(X), logged.vae.encoder(X)
    assert not torch.allclose(q_plain.mean, q_logged.mean)  # two different proposals
    for tiny in (plain, logged):
        vae = tiny.vae
        est = log_marginal(vae.model, vae.guide, X, 2000, seed=0)
        assert ((est.log_px - truth).abs() < 4 * est.mc_se + 1e-9).all(), (est.log_px, truth)
        ais = log_marginal_ais(vae.model, vae.guide, X, num_steps=30, num_chains=8, seed=0)
        assert ((ais.log_px - truth).abs() < 4 * ais.mc_se + 1e-9).all(), (ais.log_px, truth)


# ------------------------------------------------------------------------------ training
def count_matrix(path, n: int = 120, genes: int = 12):
    """tests/integration/test_own_data.py's count session's matrix: two groups of rows."""
    rng = np.random.default_rng(0)
    rates = np.where(np.arange(n)[:, None] < n // 2, 2.0, 6.0) * rng.gamma(2.0, 0.5, (1, genes))
    np.save(path, rng.poisson(rates).astype(np.int64))
    return path


def test_a_two_layer_vamp_prior_and_full_guide_train_on_counts_to_a_finite_loss(tmp_path):
    counts = count_matrix(tmp_path / "counts.npy")
    argv = ["train", "--dataset", str(counts), "--likelihood", "poisson"]
    argv += ["--prior", "two-layer-vamp", "--guide", "full", "--seed", "0", "--threads", "1"]
    argv += ["--epochs", "3", "--hidden", "16", "--latent-dim", "2", "--batch-size", "16"]
    argv += ["--device", "cpu", "--quiet", "--runs-dir", str(tmp_path), "--name", "r"]
    pyro.clear_param_store()
    assert exit_code(argv) == 0
    run = tmp_path / "r"
    assert json.loads((run / "config.json").read_text())["model"]["encoder_input"] == "log1p"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    assert all(math.isfinite(r["train_objective"]) and math.isfinite(r["val_elbo"]) for r in rows)
    assert rows[-1]["val_elbo"] > rows[0]["val_elbo"]
