"""The VAE as a Pyro program: a model and a guide composed from swappable parts.

Generative story (the model)::

    z_n ~ p(z)                               prior()
    x_n ~ p_theta(x | z_n)                   likelihood(decoder(z_n))

Approximate posterior (the guide)::

    z_n ~ q_phi(z | x_n)                     guide_part(x_n)   (the encoder)

Both live in ``pyro.plate("data", N, subsample=...)``: with ``num_data=N`` a minibatch of size B
is scaled by N / B, so ``Trace_ELBO`` estimates the ELBO of the whole data set, whatever the
batch size. Without ``num_data`` the plate covers just the batch, and per-example quantities
(log-weights, ELBO terms) keep their batch dimension. Site names are ``"z"`` and ``"x"``.
"""

from __future__ import annotations

from collections.abc import Callable

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from ..config.capabilities import guide_density_problem, prior_density_use, refuse
from ..rng import seeded_rng
from .parts import latent_dim, prior_draw, prior_guide_site, prior_sample_site, uses_guide
from .priors import StandardNormalPrior


def _has_parameters(part: object) -> bool:
    return isinstance(part, nn.Module) and any(True for _ in part.parameters())


class VAE(nn.Module):
    """A variational autoencoder: ``model(x)`` and ``guide(x)`` for Pyro's inference.

    ``register_parameters`` (default True): whether model and guide call ``pyro.module`` on
    their networks, as ``pyro.infer.SVI`` with a ``pyro.optim`` optimizer (and Pyro's JIT)
    needs to find the parameters. pyro-vae's :class:`~pyro_vae.Trainer` optimizes
    ``vae.parameters()`` with one torch optimizer and switches it off during its eager steps,
    where registering every step is a cost nothing reads.

    Args:
        prior: callable returning p(z) (``event_shape == (latent_dim,)``).
        guide: callable mapping x to q(z|x), reparameterizable (the encoder).
        decoder: network mapping z to the likelihood's parameters.
        likelihood: callable mapping decoder output to p(x|z) (``event_shape == (D,)``).
    """

    def __init__(
        self,
        prior: Callable[[], dist.Distribution],
        guide: Callable[[torch.Tensor], dist.Distribution],
        decoder: nn.Module,
        likelihood: Callable[[torch.Tensor], dist.Distribution],
    ) -> None:
        super().__init__()
        if uses_guide(prior):  # a prior built from the guide (the VampPrior)
            refuse(guide_density_problem(prior_density_use(type(prior).__qualname__), guide))
            prior.attach_guide(guide)
        self.prior = prior
        self.encoder = guide
        self.decoder = decoder
        self.likelihood = likelihood
        self._register = [
            (name, part)
            for name, part in (("prior", prior), ("likelihood", likelihood))
            if _has_parameters(part)
        ]
        self.register_parameters = True
        self._subsample: dict[tuple[int, torch.device], torch.Tensor] = {}

    # ------------------------------------------------------------------ Pyro program
    def data_plate(self, x: torch.Tensor, num_data: int | None = None) -> pyro.plate:
        """The data plate at dim -1; with ``num_data`` it subsamples ``len(x)`` of ``num_data``
        (the batch's positions 0..B-1, kept per batch size and device rather than allocated
        every step, except while being JIT-traced, where a kept tensor would be frozen)."""
        batch = x.shape[-2]
        if num_data is None:
            return pyro.plate("data", batch, dim=-1)
        if torch.jit.is_tracing():
            index = torch.arange(batch, device=x.device)
        else:
            key = (int(batch), x.device)
            index = self._subsample.get(key)
            if index is None:
                index = self._subsample[key] = torch.arange(batch, device=x.device)
        return pyro.plate("data", num_data, subsample=index, dim=-1)

    def model(self, x: torch.Tensor, num_data: int | None = None) -> torch.Tensor:
        """p(z) p_theta(x|z) with x observed at site ``"x"``; x has shape ``[B, D]``."""
        if self.register_parameters:
            pyro.module("decoder", self.decoder)
            for name, part in self._register:
                pyro.module(name, part)
        with self.data_plate(x, num_data):
            z = prior_sample_site(self.prior, "z")
            return pyro.sample("x", self.likelihood(self.decoder(z)), obs=x)

    def guide(self, x: torch.Tensor, num_data: int | None = None) -> torch.Tensor:
        """q_phi(z|x) at site ``"z"``, reparameterized (then the prior's own latent variables,
        for a hierarchical prior)."""
        if self.register_parameters:
            pyro.module("encoder", self.encoder)
        with self.data_plate(x, num_data):
            z = pyro.sample("z", self.encoder(x))
            prior_guide_site(self.prior, "z", z, x)
            return z

    # ------------------------------------------------------------------ conveniences
    @property
    def latent_dim(self) -> int:
        return latent_dim(self.prior)

    def encode(self, x: torch.Tensor) -> dist.Distribution:
        """q_phi(z|x)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> dist.Distribution:
        """p_theta(x|z)."""
        return self.likelihood(self.decoder(z))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """E[x | z] at a representative code of q(z|x): its mean where known, else a sample."""
        q = self.encode(x)
        try:
            z = q.mean
        except NotImplementedError:
            z = q.sample()
        return self.decode(z).mean

    @torch.no_grad()
    def sample(self, num_samples: int, mean: bool = True) -> torch.Tensor:
        """For ``num_samples`` draws z ~ p(z): E[x | z] (``mean=True``) or x ~ p(x | z).
        ``[num_samples, D]``."""
        z = prior_draw(self.prior, num_samples)
        p = self.decode(z)
        return p.mean if mean else p.sample()

    @torch.no_grad()
    def posterior_means(self, x: torch.Tensor, samples: int = 64) -> torch.Tensor:
        """E_q[z | x]: in closed form where the guide has one, else the average of ``samples``
        draws (seeded, so figures do not change between redraws)."""
        return self._posterior_moments(x, samples)[0]

    @torch.no_grad()
    def _posterior_moments(self, x: torch.Tensor, samples: int) -> tuple[torch.Tensor, ...]:
        q = self.encode(x)
        try:
            return q.mean, None
        except NotImplementedError:
            with seeded_rng(0):
                z = q.sample((samples,))
            return z.mean(0), z.var(0)

    @torch.no_grad()
    def activity(self, x: torch.Tensor, samples: int = 64) -> torch.Tensor:
        """Var_x(E_q[z | x]) per latent dimension (Burda et al.'s "active units": a dimension
        with activity below 0.01 is unused by the model). Where the mean is a Monte Carlo
        average of S draws, its own noise, E_x[Var(z | x)] / S, is subtracted. ``[latent_dim]``."""
        means, within = self._posterior_moments(x, samples)
        activity = means.var(0)
        if within is not None:
            activity = (activity - within.mean(0) / samples).clamp(min=0)
        return activity

    @torch.no_grad()
    def latent_axes(
        self, per_axis: int = 10, dims: tuple[int, ...] = (0, 1), draws: int = 20_000
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The z values of a manifold grid: along each of ``dims``, the quantiles
        (m - 1/2) / per_axis of the prior's marginal in that dimension (exact for N(0, I),
        else from ``draws`` seeded draws of the prior, the caller's random stream untouched),
        and for the other dimensions the prior's marginal medians. ``([len(dims), per_axis],
        [latent_dim])``."""
        probs = (torch.arange(per_axis, dtype=torch.float64) + 0.5) / per_axis
        k = self.latent_dim
        if isinstance(self.prior, StandardNormalPrior):
            axis = torch.distributions.Normal(0.0, 1.0).icdf(probs).float()
            return axis.expand(len(dims), per_axis).clone(), torch.zeros(k)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            z = prior_draw(self.prior, draws).double().cpu()
        axes = torch.quantile(z[:, list(dims)], probs, dim=0).T.float()
        return axes, z.median(dim=0).values.float()

    @torch.no_grad()
    def latent_grid_means(self, per_axis: int = 10, dims: tuple[int, ...] = (0, 1)) -> torch.Tensor:
        """E[x | z] on a grid of z at the prior's quantiles (:meth:`latent_axes`) along the
        latent dimensions ``dims`` (the first one only if the latent space is 1-D), the others
        at their medians: the learned manifold (as in Kingma & Welling's Fig. 4, whose prior
        is N(0, I)). ``[per_axis ** len(dims), D]``."""
        k = self.latent_dim
        dims = tuple(dims)[: min(k, 2)]
        axes, center = self.latent_axes(per_axis, dims)
        if len(dims) == 1:
            points = axes[0].unsqueeze(-1)
        else:
            points = torch.stack(torch.meshgrid(axes[0], axes[1], indexing="ij"), -1)
            points = points.reshape(-1, 2)
        z = center.expand(len(points), k).clone()
        z[:, list(dims)] = points
        device = next(self.decoder.parameters()).device
        return self.decode(z.to(device)).mean
