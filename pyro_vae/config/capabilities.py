"""What the parts, the objective and the pixel scheme need of each other, checked in one place
with one message each (torch-free: the parts are read by their declared attributes only).

The declarations read here: an objective's (:mod:`.objectives`: JIT, KL weighting, particles,
whether it needs the guide's density), a pixel scheme's (:mod:`.pixels`: which likelihoods can
score it), a prior's ``uses_guide``, a guide's ``density_everywhere`` and a likelihood's
``observes`` (:mod:`pyro_vae.model.parts`). Each check returns its problem as one sentence
(``None`` or an empty list when there is none); :func:`refuse` raises it."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from .builtins import builtin_observes
from .datasets import DATA_SETS
from .objectives import OBJECTIVES, Objective
from .pixels import COUNT_SCHEMES, PIXEL_SCHEMES, pixel_scheme, schemes_for


def guide_has_density(guide: object) -> bool:
    """Whether the guide's density exists at any z (``Guide.density_everywhere``, default
    true)."""
    return bool(getattr(guide, "density_everywhere", True))


def prior_uses_guide(prior: object) -> bool:
    """Whether a prior is computed from the guide (``Prior.uses_guide`` of its class)."""
    return bool(getattr(type(prior), "uses_guide", False))


# ------------------------------------------------------------------ the guide's density
@dataclass(frozen=True)
class DensityUse:
    """Something that evaluates the guide's density away from the guide's own draws: ``who``
    (an option, in words) ``what`` (what it evaluates), and how to do ``without`` it."""

    who: str
    what: str
    without: str


IAF_INSTEAD = 'with --guide flow use --guide-kwargs \'{"flow_type": "iaf"}\''
"""The advice for the library's own guide that has no density everywhere (a planar flow)."""

AIS_FROM_GUIDE = DensityUse(
    "AIS from the guide",
    "evaluates q(z|x) at every state of its chains",
    "start AIS from the prior instead (start='prior'; on the command line --ais-start prior)",
)


PRIOR_INSTEAD = (
    "use --guide diagonal or full (with --prior two-layer-vamp also an IAF: --guide-kwargs "
    '\'{"flow_type": "iaf"}\')'
)
"""The advice for a prior built from the guide given one with no density everywhere (the
VampPrior refuses every flow guide, so an IAF is no way out there)."""


def prior_density_use(prior_name: str) -> DensityUse:
    """The use a prior built from the guide (``uses_guide``) makes of its density."""
    return DensityUse(
        f"the prior {prior_name}",
        "evaluates q(z|u) at any z (p(z) is built from it)",
        PRIOR_INSTEAD,
    )


def objective_density_use(obj: Objective) -> DensityUse | None:
    """The use objective ``obj`` makes of the guide's density (``None``: none)."""
    if not obj.needs_guide_density:
        return None
    instead = f", or --elbo {obj.instead}" if obj.instead else ""
    return DensityUse(f"--elbo {obj.name}", obj.density_use, IAF_INSTEAD + instead)


def guide_density_problem(use: DensityUse | None, guide: object) -> str | None:
    """The one message for a guide without a density everywhere where ``use`` needs one
    (``guide=None``: a guide found wanting while it ran)."""
    if use is None or (guide is not None and guide_has_density(guide)):
        return None
    if guide is None:
        named, why = "", "its transform has no inverse; planar flows are not invertible"
    else:
        named = f" {type(guide).__qualname__}"
        why = "density_everywhere is false; planar flows are not invertible"
    return f"{use.who} {use.what}; the guide{named} has no density there ({why}): {use.without}"


# ------------------------------------------------------------------ the objective's options
def objective_problems(
    elbo: str, particles: int, jit: bool | None, beta: float, kl_warmup: int
) -> list[str]:
    """The training options the objective ``elbo`` does not support, one sentence each."""
    obj = OBJECTIVES[elbo]
    found = []
    if not obj.kl_weighting and (beta != 1 or kl_warmup):
        found.append(f"--beta and --kl-warmup apply to the ELBO, not --elbo {elbo}")
    if not obj.jit and jit:
        found.append(f"--jit is not available for --elbo {elbo}")
    if particles < obj.min_particles:
        found.append(
            f"--elbo {elbo} needs --particles K >= {obj.min_particles} (with K = 1 it is the ELBO)"
        )
    return found


# ------------------------------------------------------------------ likelihood and pixels
def likelihoods_for(*kinds: str) -> str:
    """The built-in likelihoods that observe one of ``kinds``, each group with the pixel schemes
    it scores, in words (``bernoulli (--pixels dynamic or static), gaussian or ...``)."""
    observed = builtin_observes()
    groups = []
    for kind in dict.fromkeys(observed.values()):
        names = [n for n, k in observed.items() if k == kind]
        if kind in kinds:
            schemes = " or ".join(schemes_for(kind))
            groups.append(f"{' or '.join(names)} (--pixels {schemes})")
    return ", ".join(groups)


def pixels_problem(likelihood_name: str, observes: str, pixels: str) -> str | None:
    """The one message for a likelihood (observing ``observes``) that cannot score the pixel
    scheme ``pixels``."""
    scheme = pixel_scheme(pixels)
    if observes in scheme.scored_by:
        return None
    allowed = " or ".join(schemes_for(observes))
    if observes == "counts":
        return (
            f"the likelihood {likelihood_name!r} scores counts (non-negative integers): it "
            f"needs count data (--pixels {allowed}), not {pixels!r}; for other data use "
            f"--likelihood {likelihoods_for('binary', 'unit', 'continuous')}"
        )
    if scheme.values == "counts":
        return (
            f"the likelihood {likelihood_name!r} cannot score counts (--pixels {pixels}): use "
            f"--likelihood {likelihoods_for('counts')}"
        )
    if observes == "continuous":
        return (
            f"the likelihood {likelihood_name!r} is a density: it needs --pixels {allowed}, not "
            f"{pixels!r} (a density of discrete values grows without bound)"
        )
    grey = ""
    if likelihood_name == "bernoulli":
        grey = "; grey to score grey levels with the Bernoulli formula"
    return (
        f"the likelihood {likelihood_name!r} needs binary pixels (--pixels {allowed}{grey}), "
        f"not {pixels!r}"
    )


def dataset_pixels_problem(dataset: str, pixels: str | None) -> str | None:
    """The one message for a count scheme asked of a named data set (they are all images)."""
    if pixels not in COUNT_SCHEMES or dataset not in DATA_SETS:
        return None
    images = ", ".join(s for s in PIXEL_SCHEMES if s not in COUNT_SCHEMES)
    return (
        f"--pixels {pixels} views count data, and the data set {dataset!r} holds images: use "
        f"--pixels {images}"
    )


# ------------------------------------------------------------------ all of them
def combination_problems(
    *,
    prior_name: str,
    prior: object,
    guide: object,
    elbo: str,
    likelihood_name: str,
    observes: str,
    pixels: str,
) -> list[str]:
    """Every combination the parts, the objective and the pixels cannot support, one sentence
    each: a prior or an objective that needs the guide's density, a likelihood that cannot
    score the pixels."""
    found = [
        guide_density_problem(prior_density_use(prior_name), guide)
        if prior_uses_guide(prior)
        else None,
        guide_density_problem(objective_density_use(OBJECTIVES[elbo]), guide),
        pixels_problem(likelihood_name, observes, pixels),
    ]
    return [p for p in found if p]


def refuse(problem: str | list[str] | None) -> None:
    """Raise :class:`ConfigError` with ``problem`` (the first of them), if there is one."""
    if isinstance(problem, list):
        problem = problem[0] if problem else None
    if problem:
        raise ConfigError(problem)
