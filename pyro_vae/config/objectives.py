"""The training objectives, declared once (torch-free): what each is called, its help, the class
that implements it (an import path, ``"module:Class"``), and what it supports (a JIT-compiled
version, KL weighting, how many particles it needs, whether it evaluates the guide's density
away from the guide's own draws).

The ``--elbo`` option's help and choices, the configuration's checks
(:mod:`.capabilities`), the JIT default, the description of a run's objective and the
objective the trainer builds (:func:`pyro_vae.infer.objectives.make_objective`, which imports
the class named here) are all read from :data:`OBJECTIVES`. Adding an objective that a class
implements (one of Pyro's ELBOs, or one of pyro-vae's) is one entry here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Objective:
    """A training objective (``--elbo NAME``) and its capabilities.

    ``title`` describes the objective of a run (``{K}``: its particles); ``density_use`` says
    what the objective does with the guide's density when ``needs_guide_density``, and
    ``instead`` names an objective that does without it."""

    name: str
    help: str
    title: str
    implementation: str
    """The class that implements it, ``"module:Class"``: constructed with those of
    ``num_particles``, ``vectorize_particles`` and ``max_plate_nesting`` its ``__init__`` takes,
    it has ``differentiable_loss(model, guide, x, num_data=N)``."""
    jit_implementation: str = ""
    """Its JIT-compiled version (``--jit``), likewise; ``""``: none."""
    compiled_implementation: str = ""
    """Its ``torch.compile`` version, which ``--jit`` takes instead of the JIT's where a run
    trains long enough to repay the compiling (``pyro_vae.infer.compiled``); ``""``: none."""
    kl_weighting: bool = False
    """Whether ``--beta`` and ``--kl-warmup`` apply (the KL term is a term of its own)."""
    min_particles: int = 1
    """The fewest ``--particles`` it accepts (2 for an importance-weighted bound)."""
    needs_guide_density: bool = False
    """Whether it evaluates log q(z|x) other than along the guide's own sampling path."""
    density_use: str = ""
    instead: str = ""

    @property
    def jit(self) -> bool:
        """Whether it has a JIT-compiled version (``--jit``)."""
        return bool(self.jit_implementation)

    def describe(self, particles: int, beta: float = 1.0, warmup: int = 0) -> str:
        """What a run's objective is, in words (for printouts and plot legends)."""
        if self.kl_weighting and (beta != 1 or warmup):
            return f"KL-weighted ELBO (beta={beta:g}, warm-up {warmup} epochs)"
        return self.title.format(K=particles)


OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective(
            "trace",
            "Trace_ELBO",
            "ELBO",
            "pyro.infer:Trace_ELBO",
            jit_implementation="pyro_vae.infer.objectives:JitTraceELBO",
            compiled_implementation="pyro_vae.infer.compiled:CompiledTraceELBO",
            kl_weighting=True,
        ),
        Objective(
            "compiled",
            "Trace_ELBO compiled by torch.compile, eager where the compiler is unavailable",
            "ELBO",
            "pyro_vae.infer.compiled:CompiledTraceELBO",
            kl_weighting=True,
        ),
        Objective(
            "meanfield",
            "analytic KL",
            "ELBO",
            "pyro.infer:TraceMeanField_ELBO",
            kl_weighting=True,  # Pyro 1.9's JitTraceMeanField_ELBO recompiles at every step
        ),
        Objective(
            "iwae",
            "importance-weighted bound",
            "IWAE bound (K={K})",
            "pyro_vae.infer.objectives:IWAE",
            min_particles=2,
        ),
        Objective(
            "iwae-dreg",
            "the same with doubly reparameterized guide gradients",
            "IWAE bound (K={K}, DReG gradients)",
            "pyro_vae.infer.objectives:IWAE_DReG",
            min_particles=2,
            needs_guide_density=True,
            density_use="re-scores log q(z|x) at the guide's draws with its parameters held fixed",
            instead="iwae",
        ),
    )
}
"""Every training objective by name (``--elbo``), in the order the help lists them."""


def objective(name: str) -> Objective:
    """The declaration of objective ``name`` (a ``ValueError`` naming the choices if none)."""
    try:
        return OBJECTIVES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown objective {name!r}; one of {', '.join(OBJECTIVES)}") from None


def elbo_help() -> str:
    """The help of ``--elbo``: each objective's name and help."""
    return "training objective: " + ", ".join(f"{o.name} ({o.help})" for o in OBJECTIVES.values())


def names_where(capability: str) -> tuple[str, ...]:
    """The objectives with a true (or above 1) ``capability``, e.g. ``"jit"``."""
    found = []
    for o in OBJECTIVES.values():
        value = getattr(o, capability)
        if value is True or (not isinstance(value, bool) and value > 1):
            found.append(o.name)
    return tuple(found)


LIBRARY_PACKAGE = "pyro_vae"


def is_library_module(module: str) -> bool:
    """Whether a part defined in ``module`` is one of pyro-vae's own (however it was named)."""
    return module == LIBRARY_PACKAGE or module.startswith(LIBRARY_PACKAGE + ".")


def jit_default(elbo: str, part_modules: Iterable[str]) -> bool:
    """What ``--jit`` is when not given, the one rule for the configuration and the trainer:
    on when the objective has a JIT-compiled version and every part is defined in pyro-vae
    (``part_modules``: the modules of the parts' classes), whose programs have the same
    structure at every step; off for a user's part, which may branch on tensor values (a traced
    program would freeze the branch it took), unless ``--jit`` asks for it."""
    return objective(elbo).jit and all(is_library_module(m) for m in part_modules)
