"""Capabilities declared with the thing they describe (an objective's, a pixel scheme's, a
guide's density), read by the option help, the checks, the trainer and the data pipeline, with
one message per combination the parts, the objective and the pixels cannot support."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from pyro.infer import JitTrace_ELBO

from pyro_vae import ConfigError, ModelConfig, RunConfig, Trainer, build_vae, resolve
from pyro_vae.app.evaluate import Estimator
from pyro_vae.app.options import training_parser
from pyro_vae.app.vae_build import PIXELS_FOR
from pyro_vae.config import capabilities, objectives
from pyro_vae.config.capabilities import (
    AIS_FROM_GUIDE,
    combination_problems,
    guide_density_problem,
    objective_density_use,
    objective_problems,
    pixels_problem,
    prior_density_use,
)
from pyro_vae.config.objectives import OBJECTIVES, jit_default
from pyro_vae.config.pixels import COUNT_SCHEMES, SCHEMES, pixel_scheme
from pyro_vae.data.pixels import eval_view, train_view
from pyro_vae.infer.ais import log_marginal_ais
from pyro_vae.infer.objectives import ELBOS, make_objective, objective_name
from pyro_vae.model.guides import DiagonalGaussianGuide, FlowGuide
from pyro_vae.model.parts import OBSERVES, Prior
from pyro_vae.model.vae import VAE

PLANAR = {"guide": "flow", "guide_kwargs": {"flow_type": "planar"}}


# ------------------------------------------------------------------------------ objectives
def test_every_declared_objective_has_an_implementation_and_no_other():
    assert list(OBJECTIVES) == list(ELBOS)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_the_jit_declaration_is_what_the_trainer_can_build(name):
    declared = OBJECTIVES[name]
    particles = max(2, declared.min_particles)
    if declared.jit:
        assert isinstance(make_objective(name, particles, True), JitTrace_ELBO)
    else:
        with pytest.raises(ValueError, match="no JIT-compiled version"):
            make_objective(name, particles, True)
    assert not isinstance(make_objective(name, particles, False), JitTrace_ELBO)
    if declared.min_particles > 1:
        with pytest.raises(ValueError, match="at least 2 particles"):
            make_objective(name, 1, False)


def test_the_elbo_option_lists_each_declaration():
    parser = training_parser()
    elbo = next(a for a in parser._actions if "--elbo" in a.option_strings)
    assert sorted(elbo.choices) == sorted(OBJECTIVES)
    for o in OBJECTIVES.values():
        assert f"{o.name} ({o.help})" in elbo.help


def test_the_checks_read_the_declaration(monkeypatch):
    """Changing an objective's declaration changes what the configuration accepts."""
    assert objective_problems("iwae", 2, None, 1.0, 0) == []
    stricter = dataclasses.replace(OBJECTIVES["iwae"], min_particles=3, kl_weighting=True)
    monkeypatch.setitem(OBJECTIVES, "iwae", stricter)
    assert objective_problems("iwae", 2, None, 2.0, 0) == [
        "--elbo iwae needs --particles K >= 3 (with K = 1 it is the ELBO)"
    ]
    cfg = RunConfig()
    cfg.train.elbo, cfg.train.particles = "iwae", 2
    with pytest.raises(ConfigError, match="K >= 3"):
        cfg.validate()
    jit_capable = dataclasses.replace(
        OBJECTIVES["meanfield"], jit_implementation="pyro.infer:JitTraceMeanField_ELBO"
    )
    monkeypatch.setitem(OBJECTIVES, "meanfield", jit_capable)
    assert objective_problems("meanfield", 1, True, 1.0, 0) == []
    assert jit_default("meanfield", ["pyro_vae.model.priors"])


@pytest.mark.parametrize(
    "elbo,particles,beta,warmup,words",
    [
        ("trace", 1, 1.0, 0, "ELBO"),
        ("meanfield", 3, 1.0, 0, "ELBO"),
        ("trace", 1, 0.5, 4, "KL-weighted ELBO (beta=0.5, warm-up 4 epochs)"),
        ("iwae", 5, 1.0, 0, "IWAE bound (K=5)"),
        ("iwae-dreg", 7, 1.0, 0, "IWAE bound (K=7, DReG gradients)"),
    ],
)
def test_a_runs_objective_is_described_from_its_declaration(elbo, particles, beta, warmup, words):
    assert objective_name(elbo, particles, beta, warmup) == words


# ------------------------------------------------------------------------------ the JIT default
def test_one_rule_decides_the_jit_default_by_the_parts_modules():
    assert jit_default("trace", ["pyro_vae.model.priors", "pyro_vae.model.guides"])
    assert not jit_default("trace", ["pyro_vae.model.priors", "mypkg.guides"])
    assert not jit_default("trace", ["pyro_vae_extras.guides"])  # a look-alike package
    assert not jit_default("iwae", ["pyro_vae.model.priors"])


def test_a_library_part_named_by_import_path_gets_the_same_default_in_resolve_and_trainer(digits):
    """Before, the configuration decided by the part's short name and the trainer by its
    module, so a library class named by its import path was JIT-compiled by one and not the
    other."""
    cfg = RunConfig()
    cfg.model.hidden, cfg.model.latent_dim = [16], 3
    cfg.model.guide = "pyro_vae.model.guides:DiagonalGaussianGuide"
    assert resolve(cfg).train.jit is True
    vae = build_vae(cfg.model, 64)
    assert Trainer(vae, cfg.train, digits, progress=False).cfg.jit is True
    vae.encoder = type("Mine", (DiagonalGaussianGuide,), {"__module__": "mine"})(64, 3, [16])
    assert Trainer(vae, cfg.train, digits, progress=False).cfg.jit is False


# ------------------------------------------------------------------------------ pixel schemes
@pytest.mark.parametrize("name", sorted(set(SCHEMES) - set(COUNT_SCHEMES)))  # images' schemes
def test_each_scheme_draws_what_it_declares(digits, name):
    scheme = SCHEMES[name]
    torch.manual_seed(0)
    first = train_view(digits.train, digits.levels, scheme)
    second = train_view(digits.train, digits.levels, name)
    assert torch.equal(first, second) is not scheme.fresh_noise
    values = set(first.unique().tolist())
    assert (values == {0.0, 1.0}) is scheme.binary
    if scheme.values == "continuous":
        assert 0 < first.min() and first.max() < 1 and len(values) > digits.levels
    evaluated = eval_view(digits.test, digits.levels, scheme, "test")
    assert (set(evaluated.unique().tolist()) == {0.0, 1.0}) is not scheme.density


def test_which_likelihood_scores_which_scheme_comes_from_the_schemes():
    for kind in OBSERVES:
        assert PIXELS_FOR[kind] == tuple(n for n, s in SCHEMES.items() if kind in s.scored_by)
        for name in SCHEMES:
            problem = pixels_problem("mine", kind, name)
            assert (problem is None) is (name in PIXELS_FOR[kind])
    assert "--pixels dequantized" in pixels_problem("gaussian", "continuous", "grey")
    assert "--pixels dynamic or static" in pixels_problem("strict", "binary", "grey")
    assert "grey to score grey levels" in pixels_problem("bernoulli", "unit", "dequantized")


def test_an_unknown_scheme_is_one_message():
    with pytest.raises(ValueError, match="unknown pixel scheme 'jpeg'; expected one of dynamic"):
        pixel_scheme("jpeg")


# ------------------------------------------------------------------------------ guide density
def _planar_vae() -> VAE:
    torch.manual_seed(0)
    return build_vae(ModelConfig(latent_dim=2, hidden=[8], **PLANAR), 20)


def test_the_guide_density_message_is_one_sentence_shape_for_every_use():
    guide = FlowGuide(20, 2, [8], flow_type="planar")
    iaf = FlowGuide(20, 2, [8], flow_type="iaf")
    uses = [
        prior_density_use("vamp"),
        objective_density_use(OBJECTIVES["iwae-dreg"]),
        AIS_FROM_GUIDE,
    ]
    for use in uses:
        message = guide_density_problem(use, guide)
        assert message.startswith(f"{use.who} {use.what}; the guide FlowGuide has no density")
        assert "planar flows are not invertible" in message and message.endswith(use.without)
        assert "\n" not in message
        assert guide_density_problem(use, iaf) is None
    assert objective_density_use(OBJECTIVES["iwae"]) is None
    assert [o.name for o in OBJECTIVES.values() if o.needs_guide_density] == ["iwae-dreg"]


@pytest.mark.parametrize(
    "train,model,use",
    [
        (
            {"elbo": "iwae-dreg", "particles": 3},
            PLANAR,
            objective_density_use(OBJECTIVES["iwae-dreg"]),
        ),
        ({}, {"prior": "vamp", **PLANAR}, prior_density_use("VampPrior")),
    ],
)
def test_resolve_refuses_with_the_one_message(train, model, use):
    cfg = RunConfig()
    cfg.model.hidden, cfg.model.latent_dim = [8], 2
    for key, value in {**train}.items():
        setattr(cfg.train, key, value)
    for key, value in model.items():
        setattr(cfg.model, key, value)
    with pytest.raises(ConfigError) as caught:
        resolve(cfg)
    assert str(caught.value).endswith(guide_density_problem(use, _planar_vae().encoder))


def test_ais_from_the_guide_is_refused_with_the_same_message_by_the_library_and_the_cli():
    vae = _planar_vae()
    expected = guide_density_problem(AIS_FROM_GUIDE, vae.encoder)
    assert "--ais-start prior" in expected
    with pytest.raises(ConfigError) as caught:
        Estimator(method="ais", start="guide").check(vae)
    assert str(caught.value) == expected
    x = torch.bernoulli(torch.full((3, 20), 0.5))
    with pytest.raises(ValueError) as caught:
        log_marginal_ais(vae.model, vae.guide, x, num_steps=3, num_chains=2)
    assert str(caught.value) == expected
    Estimator(method="ais", start="prior").check(vae)


class GuideBuiltPrior(Prior):
    """A user's prior built from the guide that checks nothing itself."""

    uses_guide = True

    def __init__(self, latent_dim: int) -> None:
        super().__init__(latent_dim)
        self.attached = False

    def attach_guide(self, guide) -> None:
        self.attached = True

    def forward(self):
        raise NotImplementedError


def test_any_prior_built_from_the_guide_is_checked_before_it_receives_one():
    vae = _planar_vae()
    prior = GuideBuiltPrior(2)
    with pytest.raises(ConfigError) as caught:
        VAE(prior, vae.encoder, vae.decoder, vae.likelihood)
    assert str(caught.value) == guide_density_problem(
        prior_density_use("GuideBuiltPrior"), vae.encoder
    )
    assert not prior.attached


# ------------------------------------------------------------------------------ all at once
class _Guide:
    density_everywhere = False


class _Prior:
    uses_guide = True


def test_combination_problems_names_every_problem_without_torch():
    found = combination_problems(
        prior_name="vamp",
        prior=_Prior(),
        guide=_Guide(),
        elbo="iwae-dreg",
        likelihood_name="gaussian",
        observes="continuous",
        pixels="dynamic",
    )
    assert [p.split(" ", 2)[:2] for p in found] == [
        ["the", "prior"],
        ["--elbo", "iwae-dreg"],
        ["the", "likelihood"],
    ]
    fine = dict(prior_name="normal", prior=object(), guide=object(), elbo="iwae")
    assert combination_problems(**fine, likelihood_name="b", observes="unit", pixels="grey") == []
    with pytest.raises(ConfigError, match="the prior vamp"):
        capabilities.refuse(found)
    capabilities.refuse([])  # nothing to refuse


def test_the_declarations_load_without_torch():
    import subprocess
    import sys

    code = (
        "import sys; import pyro_vae.config.capabilities, pyro_vae.config.objectives\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert objectives.OBJECTIVES is OBJECTIVES
