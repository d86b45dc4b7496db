"""The pixel schemes, declared once (torch-free): how the integer grey levels of an image
become what a likelihood observes, and which likelihoods can score that.

A scheme's ``values`` use the vocabulary of a likelihood's ``observes``
(:mod:`pyro_vae.model.parts`): ``binary`` x in {0, 1}; ``unit`` x in [0, 1] (grey levels);
``continuous`` real x (dequantized levels, for a density). The tensors themselves are drawn in
:mod:`pyro_vae.data.pixels`, which reads these declarations; so do the option's help, the
likelihood-versus-pixels check (:mod:`.capabilities`), the trainer (fresh noise or a fixed
tensor), the baselines, figures and interpolations. Adding a scheme is one entry here (and a
branch in :mod:`pyro_vae.data.pixels` if its values are of a new kind).

``counts`` x in {0, 1, 2, ...} is count data seen as it is (floats holding the non-negative
integers of a data set of counts), never images: scored by the count likelihoods only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Values = Literal["binary", "unit", "continuous", "counts"]


@dataclass(frozen=True)
class PixelScheme:
    """How images are seen (``--pixels NAME``)."""

    name: str
    help: str
    values: Values
    """What the training tensor holds."""
    fresh_noise: bool
    """Whether every epoch draws new noise (else the training tensor is fixed)."""
    scored_by: tuple[str, ...]
    """The kinds of likelihood (``Likelihood.observes``) that can score it."""

    @property
    def binary(self) -> bool:
        """Whether the training tensor is 0/1 (a binarization)."""
        return self.values == "binary"

    @property
    def density(self) -> bool:
        """Whether the model is a density of dequantized pixels (evaluated on a fixed
        dequantization, with a log(levels) offset per dimension against a probability of grey
        levels); otherwise a model of binary images, evaluated on a fixed binarization."""
        return self.values == "continuous"


SCHEMES: dict[str, PixelScheme] = {
    s.name: s
    for s in (
        PixelScheme("dynamic", "re-binarize every epoch", "binary", True, ("binary", "unit")),
        PixelScheme("static", "one fixed binarization", "binary", False, ("binary", "unit")),
        PixelScheme("grey", "grey levels in [0,1]", "unit", False, ("unit",)),
        PixelScheme("dequantized", "(level+u)/levels", "continuous", True, ("continuous",)),
        PixelScheme("counts", "count data as they are", "counts", False, ("counts",)),
        PixelScheme(
            "as-is", "a data file's values as they are", "continuous", False, ("continuous",)
        ),
    )
}
"""Every pixel scheme by name, in the order the help lists them. ``as-is`` is for data that
are not integer levels (a data file's counts or continuous values: see
:func:`pyro_vae.config.datasets.data_pixels`)."""

AS_IS = "as-is"
"""The scheme of counts and continuous values, observed as they are."""

PIXEL_SCHEMES: tuple[str, ...] = tuple(SCHEMES)
"""The names of the pixel schemes (``--pixels``)."""

BINARY_SCHEMES: tuple[str, ...] = tuple(s.name for s in SCHEMES.values() if s.binary)
"""The schemes whose training tensor is a binarization."""

DEFAULT_FOR: dict[str, str] = {"binary": "dynamic", "unit": "dynamic", "continuous": "dequantized"}
"""The scheme a likelihood observing each kind of data is trained on when it prefers none. None
for ``counts``: ``counts`` views count data only, whose kind selects it; on images a count
likelihood gets ``dequantized`` and is refused (:func:`.capabilities.pixels_problem`)."""

COUNT_SCHEMES: tuple[str, ...] = tuple(s.name for s in SCHEMES.values() if s.values == "counts")
"""The schemes of count data (not images: a named image data set cannot be seen through them)."""


def pixel_scheme(name: str | PixelScheme) -> PixelScheme:
    """The declaration of the scheme ``name`` (a ``ValueError`` naming the choices if none)."""
    if isinstance(name, PixelScheme):
        return name
    try:
        return SCHEMES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown pixel scheme {name!r}; expected one of {', '.join(PIXEL_SCHEMES)}"
        ) from None


def schemes_for(observes: str) -> tuple[str, ...]:
    """The schemes a likelihood that observes ``observes`` can score."""
    return tuple(s.name for s in SCHEMES.values() if observes in s.scored_by)


def pixels_help() -> str:
    """The help of ``--pixels``: each scheme's name and help."""
    return "; ".join(f"{s.name}: {s.help}" for s in SCHEMES.values())
