"""Per-data-point refinement of the guide (pyro_vae.infer.refine), checked on a linear-Gaussian
model whose posterior and log p(x) are known in closed form (issue 29's Done-when)."""

from __future__ import annotations

import pyro.distributions as dist
import pytest
import torch
from torch import nn
from torch.distributions import kl_divergence

from pyro_vae.infer.refine import refine, refined_log_marginal
from pyro_vae.model.guides import DiagonalGaussianGuide, FlowGuide, FullCovarianceGuide
from pyro_vae.model.vae import VAE

D, K, NOISE, N = 5, 2, 0.5, 6
F64 = torch.float64


class LinearGaussianVAE:
    """z ~ N(0, I), x | z ~ N(W z + b, s^2 I) as a pyro-vae VAE: posterior N(mu(x), S) with
    S = (I + W^T W / s^2)^-1, mu(x) = S W^T (x - b) / s^2; x ~ N(b, W W^T + s^2 I).
    ``diagonal``: W's columns orthogonal, so that the posterior is diagonal."""

    def __init__(self, guide: nn.Module, diagonal: bool = False, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(D, K, generator=g, dtype=F64)
        if diagonal:
            w = torch.linalg.qr(w).Q * torch.tensor([0.7, 2.0], dtype=F64)
        self.W, self.b = w, torch.randn(D, generator=g, dtype=F64)
        decoder = nn.Linear(K, D).double()
        with torch.no_grad():
            decoder.weight.copy_(self.W)
            decoder.bias.copy_(self.b)
        zeros = torch.zeros(K, dtype=F64)
        self.vae = VAE(
            lambda: dist.Normal(zeros, 1.0).to_event(1),
            guide,
            decoder,
            lambda h: dist.Normal(h, NOISE).to_event(1),
        )
        self.cov = torch.linalg.inv(torch.eye(K, dtype=F64) + self.W.T @ self.W / NOISE**2)
        self.x = self.data(N, torch.Generator().manual_seed(seed + 1))

    def data(self, n: int, g: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, K, generator=g, dtype=F64)
        return z @ self.W.T + self.b + NOISE * torch.randn(n, D, generator=g, dtype=F64)

    def posterior(self, x: torch.Tensor) -> dist.MultivariateNormal:
        mean = (x - self.b) @ self.W / NOISE**2 @ self.cov
        return dist.MultivariateNormal(mean, covariance_matrix=self.cov)

    def log_px(self, x: torch.Tensor) -> torch.Tensor:
        cov = self.W @ self.W.T + NOISE**2 * torch.eye(D, dtype=F64)
        return dist.MultivariateNormal(self.b, covariance_matrix=cov).log_prob(x)

    def kl_to_posterior(self, q: dist.Distribution, x: torch.Tensor) -> torch.Tensor:
        """KL(q || p(z | x)) in closed form, per point: log p(x) - ELBO(q)."""
        if isinstance(q, dist.Independent):  # the diagonal guide
            q = dist.MultivariateNormal(q.mean, covariance_matrix=torch.diag_embed(q.variance))
        return kl_divergence(q, self.posterior(x))


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))


def near_posterior(guide_cls: type, lg_box: list, shift: float, widen: float) -> nn.Module:
    """A guide of ``guide_cls``'s family whose encoder is the exact posterior moved by ``shift``
    standard deviations and widened by ``widen``: a known amortization gap."""

    class Near(guide_cls):
        def local_parameters(self, x: torch.Tensor) -> torch.Tensor:
            post = lg_box[0].posterior(x)
            tril = torch.linalg.cholesky(post.covariance_matrix)
            sigma = tril.diagonal(dim1=-2, dim2=-1)
            loc = post.mean + shift * sigma
            raw = _inverse_softplus(widen * sigma - self.min_scale)
            if isinstance(self, DiagonalGaussianGuide):
                return torch.cat([loc, raw.expand_as(loc)], -1)
            unit = (tril / sigma.unsqueeze(-1) - torch.eye(K, dtype=F64)) / self.off_diagonal_scale
            off = unit[..., self._rows, self._cols]
            return torch.cat([loc, raw.expand_as(loc), off], -1)

    return Near(D, K, hidden=(4,)).double()


@pytest.mark.parametrize("guide_cls", [FullCovarianceGuide, DiagonalGaussianGuide])
def test_refined_elbo_reaches_log_px_and_the_amortization_gap_is_exact(guide_cls):
    box: list = []
    guide = near_posterior(guide_cls, box, shift=0.8, widen=1.6)
    lg = LinearGaussianVAE(guide, diagonal=guide_cls is DiagonalGaussianGuide)
    box.append(lg)
    x = lg.x
    r = refine(lg.vae.model, guide, x, steps=300, particles=16, lr=0.05, eval_samples=4000, seed=0)
    log_px = lg.log_px(x)
    with torch.no_grad():
        kl_refined = lg.kl_to_posterior(r.distribution(), x)
        amortization_gap = lg.kl_to_posterior(guide(x), x)  # ELBO* - ELBO: log p(x) - ELBO
    assert torch.all(amortization_gap > 0.5)  # a gap worth closing
    # the family holds the posterior: refinement finds it (closed form) ...
    assert torch.all(kl_refined < 1e-3), kl_refined
    # ... and the refined ELBO estimate is log p(x) within its Monte Carlo error
    approximation_gap = log_px - r.elbo
    assert torch.all(approximation_gap.abs() <= 3 * r.elbo_se + 1e-9), (
        approximation_gap,
        r.elbo_se,
    )
    # the measured amortization gap is the closed form's, within MC error and the residual KL
    off = r.amortization_gap - amortization_gap
    assert torch.all(off.abs() <= 4 * r.amortization_gap_se + 1e-3), (off, r.amortization_gap_se)
    amortized = log_px - amortization_gap  # the encoder's ELBO in closed form
    assert torch.all((r.amortized_elbo - amortized).abs() <= 4 * r.amortized_elbo_se)


def test_the_diagonal_family_keeps_its_approximation_gap_on_a_correlated_posterior():
    """A diagonal q cannot hold a correlated posterior: refinement closes the amortization gap
    but leaves log p(x) - ELBO* > 0, the approximation gap."""
    box: list = []
    guide = near_posterior(DiagonalGaussianGuide, box, shift=0.8, widen=1.6)
    lg = LinearGaussianVAE(guide, diagonal=False, seed=7)
    box.append(lg)
    corr = lg.cov[0, 1] / lg.cov.diagonal().prod().sqrt()
    assert corr.abs() > 0.5  # the best diagonal q is 0.23 nat from it
    r = refine(lg.vae.model, guide, lg.x, steps=300, particles=16, lr=0.05, eval_samples=4000)
    gap = lg.log_px(lg.x) - r.elbo
    # the best diagonal Gaussian's KL to a correlated Gaussian: -1/2 log(1 - rho^2)
    best = -0.5 * torch.log(1 - corr**2)
    assert torch.all((gap - best).abs() <= 4 * r.elbo_se + 2e-3), (gap, best, r.elbo_se)


def test_flow_guide_refines_and_stays_below_log_px():
    torch.manual_seed(0)
    guide = FlowGuide(D, K, hidden=(8,), flows=1).double()
    lg = LinearGaussianVAE(guide)
    r = refine(lg.vae.model, guide, lg.x, steps=100, particles=8, lr=0.05, eval_samples=500)
    log_px = lg.log_px(lg.x)
    assert torch.all(r.amortization_gap > 5 * r.amortization_gap_se)
    assert torch.all(r.elbo <= log_px + 3 * r.elbo_se)


def test_a_guide_without_exposed_parameters_is_refused_with_what_is_supported():
    lg = LinearGaussianVAE(DiagonalGaussianGuide(D, K, hidden=(4,)).double())

    class Opaque(nn.Module):
        def forward(self, x):
            return dist.Normal(x[..., :K], 1.0).to_event(1)

    with pytest.raises(ValueError, match="diagonal, full and flow guides.*Opaque"):
        refine(lg.vae.model, Opaque(), lg.x, steps=1)


def test_rows_are_refined_independently():
    """One point refined alone ends where it ends among others: Adam is elementwise and the
    loss a sum over points (the same draws: the particles of a point depend on its seed)."""
    guide = DiagonalGaussianGuide(D, K, hidden=(4,)).double()
    lg = LinearGaussianVAE(guide)
    together = refine(lg.vae.model, guide, lg.x, steps=20, eval_samples=0, batch_size=N)
    alone = refine(lg.vae.model, guide, lg.x[:1], steps=20, eval_samples=0)
    first = together.params[0]
    assert not torch.allclose(first, guide.local_parameters(lg.x[:1])[0])  # it moved
    assert torch.isnan(together.elbo).all()  # not estimated with eval_samples=0
    # different draws (another batch shape), the same target: close, not equal
    assert (alone.params[0] - first).abs().max() < 0.2


def test_refined_proposal_is_exact_importance_sampling_on_the_linear_gaussian():
    box: list = []
    guide = near_posterior(FullCovarianceGuide, box, shift=1.0, widen=2.0)
    lg = LinearGaussianVAE(guide)
    box.append(lg)
    est = refined_log_marginal(lg.vae.model, guide, lg.x, 200, steps=300, lr=0.05, seed=0)
    log_px = lg.log_px(lg.x)
    assert torch.all((est.log_px - log_px).abs() < 1e-3)
    assert torch.all(est.ess > 195)  # nearly flat weights: the proposal is the posterior
