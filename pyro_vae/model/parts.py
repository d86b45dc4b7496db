"""The part contract: what a prior, a guide, a likelihood and a decoder must be.

A VAE here is the Pyro program ``model(x)`` / ``guide(x)`` composed from four parts::

    z ~ p(z)            = prior()                       Prior
    z ~ q_phi(z|x)      = guide(x)                      Guide (the encoder)
    h = f_theta(z)      = decoder(z)                    Decoder
    x ~ p_theta(x|z)    = likelihood(h)                 Likelihood

Each kind is an abstract :class:`torch.nn.Module` below. Subclassing one is the documented way
to write a part; a plain ``nn.Module`` that follows the same contract by duck typing also works
(the attributes below then take their defaults). Everything the library reads of a part is
named here, typed and documented: nothing else is probed.

Construction. When a part is named in a configuration (``--prior mypkg.priors:StudentTPrior``,
or a short name), the library calls its class with keyword arguments only: those of the
*context* below that its ``__init__`` names (all of them if it takes ``**kwargs``), plus the
user's own (``--prior-kwargs '{"df": 3.0}'``)::

    latent_dim   int         dimension of z
    data_dim     int         dimension D of one (flattened) observation x
    hidden       list[int]   hidden widths of the encoder (the decoder mirrors them)
    activation   str         activation name ("relu", "softplus", "tanh", "elu", or "gated",
                             not elementwise: build hidden layers with nets.hidden_layer)
    pixels       str         how the data are seen: "dynamic", "static", "grey", "dequantized",
                             "counts"
    image_shape  tuple|None  one example's (C, H, W) for image data, else None
    out_dim      int         decoders only: D * likelihood.param_dim

A short example, a Student-t prior with a learned number of degrees of freedom::

    import pyro.distributions as dist
    import torch
    from pyro_vae.model.parts import Prior

    class StudentTPrior(Prior):
        def __init__(self, latent_dim: int, df: float = 3.0) -> None:
            super().__init__(latent_dim)
            self.log_df = torch.nn.Parameter(torch.tensor(float(df)).log())

        def forward(self) -> dist.Distribution:
            zero = torch.zeros(self.latent_dim, device=self.log_df.device)
            return dist.StudentT(self.log_df.exp(), zero, 1.0).to_event(1)

then ``pyro-vae train --prior mymodule:StudentTPrior --prior-kwargs '{"df": 5}'``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Literal

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from ..config.capabilities import guide_has_density, prior_uses_guide
from ..config.names import PART_KINDS  # noqa: F401  (re-exported: known without loading torch)
from ..config.pixels import DEFAULT_FOR, SCHEMES

Observes = Literal["binary", "unit", "continuous", "counts"]
"""What a likelihood scores: ``binary`` x in {0, 1}; ``unit`` x in [0, 1] by a formula made
for binary x (grey levels through the Bernoulli formula: not a density); ``continuous`` real x
(a density, for dequantized pixels); ``counts`` x in {0, 1, 2, ...} (a probability mass of
count data, held as floats)."""

OBSERVES: tuple[str, ...] = ("binary", "unit", "continuous", "counts")

INPUT_TRANSFORMS: tuple[str, ...] = ("as-is", "log1p")
"""What a guide's network may see of x (:attr:`Guide.input_transform`)."""


class Prior(nn.Module, ABC):
    """p(z): ``prior()`` returns a distribution with ``batch_shape == ()`` and
    ``event_shape == (latent_dim,)``; the model samples it inside the data plate.

    Optional: a prior built from the guide (the VampPrior, p(z) = mean_k q(z | u_k)) sets
    ``uses_guide = True`` and receives the guide through :meth:`attach_guide` before first use.
    It must not register the guide as a sub-module: the VAE owns the guide's parameters.
    """

    uses_guide: ClassVar[bool] = False
    """Whether p(z) is computed from the guide (then the guide's parameters are part of p(x))."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = int(latent_dim)

    @abstractmethod
    def forward(self) -> dist.Distribution:
        """The distribution p(z)."""

    def attach_guide(self, guide: nn.Module) -> None:
        """Receive the guide (only called when ``uses_guide`` is true)."""
        raise NotImplementedError(f"{type(self).__name__} sets uses_guide but has no attach_guide")

    # A hierarchical prior (z2 -> z, as in Burda et al.'s two-layer VAE) has latent variables of
    # its own and no closed-form p(z); it overrides these three, the rest of the library only
    # calls them.
    def sample_site(self, name: str = "z") -> torch.Tensor:
        """The model's sample statement(s) for z, inside its data plate; returns z. Default:
        ``pyro.sample(name, self())``."""
        return pyro.sample(name, self())

    def guide_site(self, name: str, z: torch.Tensor, x: torch.Tensor) -> None:
        """The guide's sample statements for the prior's own latent variables, inside its data
        plate, after z ~ q(z|x) was drawn at site ``name``. Default: none."""

    def draw(self, num_samples: int) -> torch.Tensor:
        """``num_samples`` draws z ~ p(z): ``[num_samples, latent_dim]``."""
        return self().sample((num_samples,))


class Guide(nn.Module, ABC):
    """q(z|x), the encoder: ``guide(x)`` maps x of shape ``[..., B, D]`` to a distribution with
    ``batch_shape == x.shape[:-1]``, ``event_shape == (latent_dim,)`` and ``has_rsample``, so
    that ELBO gradients flow through the reparameterized sample z = g_phi(eps, x).

    Optional, for refining q per data point (:mod:`pyro_vae.infer.refine`, ``evaluate --gaps``
    and ``--refine``): ``local_parameters(x)``, the per-point parameters the encoder outputs
    (``[..., B, P]``), and ``family(params)``, the distribution they define, so that
    ``guide(x)`` is ``family(local_parameters(x))``. The built-in guides have both.
    """

    density_everywhere: bool = True
    """Whether log q(z|x) can be evaluated at any z, not only at the guide's own samples
    (false for planar flows, which are not invertible). Estimators and priors that evaluate
    q at other points (AIS from the guide, the VampPrior) need it."""

    density_by_inverse: bool = False
    """Whether log q(z|x) at a point z the guide did not draw is computed through a transform's
    inverse (a flow: z mapped back to the base variable, one or more network passes per point;
    latent_dim sequential ones for an inverse autoregressive flow). The VampPrior, which needs
    q(z | u_k) for every z of a batch at every one of its K pseudo-inputs, refuses such a guide:
    B * K inverses per step."""

    density_by_network: bool = False
    """Whether log q(z|x) at a point z the guide did not draw needs a network pass for that
    point (the top-down guide: q(z1 | x, z2) at every z2). The VampPrior, which scores B * K
    such points per step, refuses such a guide as it refuses ``density_by_inverse``."""

    input_transform: str = "as-is"
    """What the encoder's network sees of x (:data:`INPUT_TRANSFORMS`): ``"as-is"``, or
    ``"log1p"``, log(1 + x), for count data (as scVI's encoder does: counts span orders of
    magnitude). Set by the library from the run's ``encoder_input`` (``--encoder-input``;
    default ``log1p`` when the likelihood observes counts). A guide honours it by passing its
    input through :meth:`encoder_input` before its network, as the built-in guides do. Only
    the proposal q(z|x) changes: the model, and so log p(x), does not."""

    def __init__(self, data_dim: int, latent_dim: int) -> None:
        super().__init__()
        self.data_dim = int(data_dim)
        self.latent_dim = int(latent_dim)

    def encoder_input(self, x: torch.Tensor) -> torch.Tensor:
        """x as the encoder's network sees it (:attr:`input_transform`)."""
        return torch.log1p(x) if self.input_transform == "log1p" else x

    @abstractmethod
    def forward(self, x: torch.Tensor) -> dist.Distribution:
        """The distribution q(z|x)."""


class Likelihood(nn.Module, ABC):
    """p(x|z): ``likelihood(h)`` maps decoder outputs of shape ``[..., B, D * param_dim]`` to
    a distribution with ``event_shape == (D,)``."""

    param_dim: int = 1
    """Decoder outputs needed per data dimension (2 for a mean and a scale per pixel)."""

    observes: Observes = "binary"
    """What data it scores (see :data:`Observes`). A class-level value is what the library
    reads before construction (to choose the default pixel scheme); an instance may narrow it
    (the Bernoulli likelihood built for ``pixels="grey"`` observes ``"unit"``)."""

    preferred_pixels: ClassVar[str | None] = None
    """The pixel scheme it is trained on when ``--pixels`` is not given; ``None``: ``dynamic``
    binarization for binary data, ``dequantized`` for a density. The Bernoulli likelihood
    prefers ``grey``: scored on grey levels g its formula is sum_d g_d log mu_d + (1 - g_d)
    log(1 - mu_d) = E_{x ~ Bernoulli(g)}[log p(x | z)], the expected log-likelihood over every
    binarization of the image, a lower-variance training signal for the same binarized-data
    model than one random binarization per epoch."""

    @abstractmethod
    def forward(self, h: torch.Tensor) -> dist.Distribution:
        """The distribution p(x|z) given decoder output ``h``."""


class Decoder(nn.Module, ABC):
    """f_theta: maps z of shape ``[..., latent_dim]`` to ``[..., out_dim]``, the likelihood's
    parameters (``out_dim = D * likelihood.param_dim``)."""

    def __init__(self, latent_dim: int, out_dim: int) -> None:
        super().__init__()
        self.latent_dim = int(latent_dim)
        self.out_dim = int(out_dim)

    @abstractmethod
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output for codes ``z``."""


BASES: dict[str, type[nn.Module]] = {
    "prior": Prior,
    "guide": Guide,
    "likelihood": Likelihood,
    "decoder": Decoder,
}
"""The abstract base class of each kind of part."""


uses_guide = prior_uses_guide
"""Whether ``prior`` is built from the guide (``Prior.uses_guide``)."""

density_everywhere = guide_has_density
"""Whether the guide's density exists at any z (``Guide.density_everywhere``)."""


def param_dim(likelihood: object) -> int:
    """Decoder outputs per data dimension (``Likelihood.param_dim``, default 1)."""
    value = getattr(likelihood, "param_dim", 1)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"param_dim must be a positive integer, got {value!r}")
    return value


def observes(likelihood: object) -> str:
    """What the likelihood (class or instance) scores (``Likelihood.observes``)."""
    return str(getattr(likelihood, "observes", "binary"))


def default_pixels(likelihood: object) -> str:
    """The pixel scheme a likelihood (class or instance) is trained on by default: its
    ``preferred_pixels``, else ``dynamic`` binarization when it observes binary data, else
    ``dequantized`` (:data:`~pyro_vae.config.pixels.DEFAULT_FOR`)."""
    preferred = getattr(likelihood, "preferred_pixels", None)
    kind = observes(likelihood)
    # an instance built to check binary support (a strict Bernoulli) cannot take grey levels
    scheme = SCHEMES.get(preferred) if isinstance(preferred, str) else None
    fits = isinstance(likelihood, type) or scheme is None or kind in scheme.scored_by
    if preferred is not None and fits:
        return str(preferred)
    return DEFAULT_FOR.get(kind, "dequantized")


def prior_sample_site(prior: object, name: str = "z") -> torch.Tensor:
    """``Prior.sample_site`` (a duck-typed prior: ``pyro.sample(name, prior())``)."""
    if isinstance(prior, Prior):
        return prior.sample_site(name)
    return pyro.sample(name, prior())


def prior_guide_site(prior: object, name: str, z: torch.Tensor, x: torch.Tensor) -> None:
    """``Prior.guide_site`` (nothing for a duck-typed prior)."""
    if isinstance(prior, Prior):
        prior.guide_site(name, z, x)


def prior_draw(prior: object, num_samples: int) -> torch.Tensor:
    """``Prior.draw`` (a duck-typed prior: ``prior().sample((num_samples,))``)."""
    if isinstance(prior, Prior):
        return prior.draw(num_samples)
    return prior().sample((num_samples,))


def refinable(guide: object) -> bool:
    """Whether q can be refined per data point: the guide has ``local_parameters`` and
    ``family`` (:class:`Guide`)."""
    return all(callable(getattr(guide, name, None)) for name in ("local_parameters", "family"))


def latent_dim(prior: object) -> int:
    """The dimension of z: the prior's ``latent_dim`` (else its distribution's event size)."""
    if isinstance(prior, Prior):
        return prior.latent_dim
    return int(prior().event_shape[0])
