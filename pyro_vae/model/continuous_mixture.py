"""The VAE as what it is: a continuous mixture of infinitely many Gaussians.

With a Gaussian decoder, p(x) = integral N(z; 0, I) N(x; mu_theta(z), Sigma_theta(z)) dz. For a
latent space of one or two dimensions the integral can be done by quadrature: with M equally
likely points z_m = Phi^{-1}((m - 1/2) / M) per latent dimension (the prior's quantiles),

    p(x) ~= (1/M^d) sum_m N(x; mu_theta(z_m), Sigma_theta(z_m)),

literally a finite mixture of M^d Gaussians laid along the decoder's curve (d = 1) or sheet
(d = 2). A GMM is the same formula with K free components instead of M tied ones. Works for any
decoder likelihood (the components are then Bernoullis, say); the figures use it for Gaussians.
"""

from __future__ import annotations

import math

import torch

from .priors import StandardNormalPrior


def prior_quantile_grid(latent_dim: int, per_dim: int) -> torch.Tensor:
    """``per_dim ** latent_dim`` points z_m, each coordinate at the standard normal's quantiles
    (m - 1/2) / per_dim: an equal-weight quadrature of N(0, I). ``[M, latent_dim]``."""
    if latent_dim not in (1, 2):
        raise ValueError(f"quadrature over z is for 1 or 2 latent dimensions, got {latent_dim}")
    probs = (torch.arange(per_dim, dtype=torch.float64) + 0.5) / per_dim
    axis = torch.distributions.Normal(0.0, 1.0).icdf(probs).float()
    if latent_dim == 1:
        return axis.unsqueeze(-1)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1)
    return grid.reshape(-1, 2)


@torch.no_grad()
def decoder_components(vae, z: torch.Tensor) -> torch.distributions.Distribution:
    """p_theta(x | z_m) for every grid point: a distribution with batch shape ``[M]``."""
    return vae.decode(z)


@torch.no_grad()
def log_density_by_quadrature(
    vae, x: torch.Tensor, per_dim: int = 400, chunk: int = 4096
) -> torch.Tensor:
    """log p(x_n) ~= logsumexp_m log p(x_n | z_m) - log M on the prior-quantile grid: ``[N]``.
    Only for the standard-normal prior, whose quantiles the grid is."""
    if not isinstance(vae.prior, StandardNormalPrior):
        raise ValueError(
            "quadrature over z uses the quantiles of N(0, I): it needs the standard normal "
            f"prior, not {type(vae.prior).__name__} (use log_marginal instead)"
        )
    z = prior_quantile_grid(vae.latent_dim, per_dim).to(x.device)
    components = decoder_components(vae, z)
    out = []
    for xb in x.split(chunk):
        log_p = components.log_prob(xb.unsqueeze(-2))  # [n, M]
        out.append(torch.logsumexp(log_p, -1) - math.log(len(z)))
    return torch.cat(out)
