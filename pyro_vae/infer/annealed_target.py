"""The annealed log-densities f_beta(z) = log pi_0(z) + beta [log p(x, z) - log pi_0(z)] of a
Pyro model and guide, for C chains per data point, with z flattened to ``[C, B, D]``."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyro
import torch
from pyro import poutine
from pyro.distributions import constraints
from pyro.poutine.util import prune_subsample_sites
from torch.distributions.mixture_same_family import MixtureSameFamilyConstraint

from ..config.capabilities import AIS_FROM_GUIDE, guide_density_problem
from .marginal import PARTICLE_PLATE, _per_datapoint

STARTS = ("guide", "prior")
"""Where AIS starts: the guide q(z|x) or the prior p(z)."""


def _real_valued(support: constraints.Constraint) -> bool:
    """Whether a support is R^d: ``real``, ``independent(real, k)``, or a mixture's
    (``MixtureSameFamily``) of components with such a support."""
    while isinstance(support, constraints.independent | MixtureSameFamilyConstraint):
        support = support.base_constraint
    return support is constraints.real


# ------------------------------------------------------------------ the annealed log-densities
@dataclass
class _Site:
    name: str
    shape: tuple[int, ...]  # the value's shape in a trace with C chains (particle plate first)
    data_pos: int  # where the data-plate dimension lies in that shape


class AnnealedTarget:
    """f_beta(z) = log pi_0(z) + beta * delta(z), delta = log p(x, z) - log pi_0(z), for a
    batch of data points and C chains, with z flattened to ``[C, B, D]``.

    The latent sites and their layout come from one trace of the starting distribution; the
    log-densities from traces of the model (and the guide) conditioned on z, reduced to one
    value per (chain, data point) as in :func:`~pyro_vae.infer.marginal.log_importance_weights`.
    """

    def __init__(
        self,
        model: Callable,
        guide: Callable,
        num_chains: int,
        start: str,
        args: tuple,
        kwargs: dict,
        data_plate: str,
        max_plate_nesting: int,
    ) -> None:
        if start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {start!r}")
        encoder = getattr(getattr(guide, "__self__", None), "encoder", None)
        if start == "guide" and encoder is not None:
            problem = guide_density_problem(AIS_FROM_GUIDE, encoder)
            if problem:
                raise ValueError(problem)
        self.model, self.guide = model, guide
        self.args, self.kwargs = args, kwargs
        self.num_chains, self.start, self.data_plate = num_chains, start, data_plate
        self.nesting = max(max_plate_nesting, 1)
        self.sites: list[_Site] = []
        self._guide_sites: dict[str, dict[str, Any]] | None = None

    def _vectorized(self, fn: Callable) -> Callable:
        def particles(*a, **k):
            with pyro.plate(PARTICLE_PLATE, self.num_chains, dim=-(self.nesting + 1)):
                return fn(*a, **k)

        return particles

    def _trace(self, fn: Callable, x: torch.Tensor, values: dict[str, torch.Tensor] | None):
        program = self._vectorized(fn if values is None else poutine.condition(fn, data=values))
        with poutine.block():
            trace = poutine.trace(program).get_trace(x, *self.args, **self.kwargs)
        return prune_subsample_sites(trace)

    def _latent_sites(self, trace) -> list[str]:
        return [
            name
            for name, site in trace.nodes.items()
            if site["type"] == "sample"
            and not site["is_observed"]
            and not site["infer"].get("is_auxiliary")
        ]

    # -- layout -------------------------------------------------------------------------
    def initial(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One draw of C chains from pi_0 for the data points ``x`` (the caller seeds it)."""
        fn = self.guide if self.start == "guide" else self.model
        trace = self._trace(fn, x, None)
        names = self._latent_sites(trace)
        if not names:
            raise ValueError(f"the {self.start} has no latent sample site to anneal")
        values = {}
        for name in names:
            site = trace.nodes[name]
            value = site["value"].detach()
            frames = {f.name: f for f in site["cond_indep_stack"] if f.vectorized}
            if self.data_plate not in frames:
                raise ValueError(
                    f"sample site {name!r} lies outside the plate {self.data_plate!r}: AIS, "
                    "like importance sampling, needs every latent variable local to a data point"
                )
            if not _real_valued(site["fn"].support):
                raise ValueError(
                    f"latent site {name!r} has support {site['fn'].support}: HMC here needs "
                    "continuous, unconstrained (real-valued) latent variables"
                )
            total = self.nesting + 1 + site["fn"].event_dim
            if value.dim() != total:
                raise ValueError(
                    f"latent site {name!r} has shape {tuple(value.shape)}: expected "
                    f"{self.nesting + 1} batch dimensions (chains, plates) and "
                    f"{site['fn'].event_dim} event dimensions"
                )
            values[name] = value
            if len(self.sites) < len(names):
                pos = self.nesting + 1 + frames[self.data_plate].dim
                self.sites.append(_Site(name, tuple(value.shape), pos))
        return values

    def flatten(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        """Site values -> ``[C, B, D]``."""
        pieces = []
        for s in self.sites:
            moved = values[s.name].movedim(s.data_pos, 1)
            pieces.append(moved.reshape(moved.shape[0], moved.shape[1], -1))
        return torch.cat(pieces, dim=-1)

    def unflatten(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """``[C, B, D]`` -> site values."""
        out, offset = {}, 0
        b = z.shape[1]
        for s in self.sites:
            moved = list(s.shape)
            moved.pop(s.data_pos)
            moved.insert(1, b)
            size = math.prod(moved[2:])
            piece = z[..., offset : offset + size].reshape(moved).movedim(1, s.data_pos)
            out[s.name] = piece
            offset += size
        return out

    # -- densities ----------------------------------------------------------------------
    def _reduce(self, trace, names: set[str] | None, x: torch.Tensor) -> torch.Tensor:
        """The sites' log-densities summed per (chain, point), in the model's own dtype (the
        caller takes the values to float64 once they are detached)."""
        shape = (self.num_chains, len(x))
        trace.compute_log_prob()
        terms = [
            _per_datapoint(name, site, self.nesting, self.data_plate, shape)
            for name, site in trace.nodes.items()
            if site["type"] == "sample" and (names is None or name in names)
        ]
        return sum(terms[1:], terms[0]) if terms else x.new_zeros(shape)

    def log_densities(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log pi_0(z), log p(x, z)), each ``[C, B]``, differentiable in z."""
        values = self.unflatten(z)
        latent = {s.name for s in self.sites}
        model_trace = self._trace(self.model, x, values)
        joint = self._reduce(model_trace, None, x)
        if self.start == "prior":
            return self._reduce(model_trace, latent, x), joint
        if self._guide_sites is not None:
            return self._guide_log_density(values, x), joint
        try:  # a transform without an inverse raises one of these (Pyro's planar: KeyError)
            guide_trace = self._trace(self.guide, x, values)
            return self._reduce(guide_trace, latent, x), joint
        except (NotImplementedError, KeyError) as e:
            raise ValueError(GUIDE_DENSITY_MISSING) from e

    # -- the guide traced once per batch ---------------------------------------------------
    def prepare(self, x: torch.Tensor, z: torch.Tensor) -> None:
        """Before annealing a batch from the guide: trace the guide once, and keep its
        distributions when they do not depend on z (a guide q(z|x) that is Gaussian given x,
        as the encoders here), so later evaluations only run the model. Checked by tracing
        again at another z: any site whose log-density of the same value changes means the
        guide is hierarchical in z, and it is then re-run at every evaluation."""
        self._guide_sites = None
        if self.start != "guide":
            return
        probe = self.unflatten(z)
        other = self.unflatten(z * 0.5 + 0.25)
        try:
            with torch.no_grad():
                first = self._trace(self.guide, x, probe)
                second = self._trace(self.guide, x, other)
                same = all(
                    torch.equal(
                        first.nodes[s.name]["fn"].log_prob(probe[s.name]),
                        second.nodes[s.name]["fn"].log_prob(probe[s.name]),
                    )
                    for s in self.sites
                )
        except (NotImplementedError, KeyError) as e:
            raise ValueError(GUIDE_DENSITY_MISSING) from e
        if same:
            self._guide_sites = {s.name: first.nodes[s.name] for s in self.sites}

    def _guide_log_density(self, values: dict[str, torch.Tensor], x: torch.Tensor):
        shape = (self.num_chains, len(x))
        terms = [
            _per_datapoint(
                name,
                {**site, "unscaled_log_prob": site["fn"].log_prob(values[name])},
                self.nesting,
                self.data_plate,
                shape,
            )
            for name, site in (self._guide_sites or {}).items()
        ]
        return sum(terms[1:], terms[0])


GUIDE_DENSITY_MISSING = guide_density_problem(AIS_FROM_GUIDE, None)
"""What a guide whose transform had no inverse while AIS ran is told (one message with the
check before it, :func:`~pyro_vae.config.capabilities.guide_density_problem`)."""
