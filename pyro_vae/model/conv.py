"""Convolutional bodies for image data: an encoder (strided convolutions down, then the
``hidden`` fully connected layers) and a decoder (the mirror image: fully connected layers up,
then transposed convolutions), their sizes inferred from the image shape.

Data flow through the library flattened (``[..., D]``, ``D = C * H * W``, row-major over
``[C, H, W]``); these modules take and return flat tensors and reshape inside, so they fit the
part contract unchanged. Each stage of ``channels`` halves the height and width (a 3x3
convolution, stride 2, padding 1: a side of n becomes ceil(n / 2), so odd sizes such as 7 or 3
work); a stage whose sides are already at most :data:`MIN_SIDE` keeps them (stride 1). The
decoder's transposed convolutions retrace the encoder's sizes exactly (``output_padding`` 0 or
1), so its output is ``[..., param_dim * D]``: ``param_dim`` blocks of D values, one per
likelihood parameter (the layout :mod:`~pyro_vae.model.likelihoods` reads), with no cropping.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .nets import ACTIVATIONS, ELEMENTWISE, MLP
from .parts import Decoder

DEFAULT_CHANNELS: tuple[int, ...] = (16, 32)
"""Output channels of each convolution stage (``channels``): sized so that a Fashion-MNIST epoch
costs a few times the MLP default's (docs/results/quality.md, *Convolutional parts*)."""
MIN_SIDE = 4
"""A stage halves the image only while both its sides are larger than this."""
MAX_STAGES = 8
MAX_CHANNELS = 4096
BODIES: tuple[str, ...] = ("mlp", "conv")
"""The encoder bodies a built-in guide takes (``encoder``, ``--encoder``)."""


class NeedsImages(ValueError):
    """A convolutional part was asked for on data whose examples are not images."""


def image_shape_3d(image_shape: Sequence[int] | None, data_dim: int, option: str = "") -> tuple:
    """``image_shape`` as ``(C, H, W)`` (a ``[H, W]`` shape has one channel), checked against
    ``data_dim``; :class:`NeedsImages` when there is none (``option``: ``"encoder"`` or
    ``"decoder"``, the option the message says to set to ``mlp``)."""
    if image_shape is None or len(image_shape) not in (2, 3):
        raise NeedsImages(
            f"--{option} conv needs images (examples of shape [H, W] or [C, H, W]); this data "
            f"set's examples are vectors of {data_dim} values: use --{option} mlp (the default)"
        )
    shape = tuple(int(n) for n in image_shape)
    shape = (1, *shape) if len(shape) == 2 else shape
    if min(shape) < 1 or math.prod(shape) != data_dim:
        raise ValueError(f"image_shape {list(shape)} does not hold data_dim={data_dim} values")
    return shape


def check_activation(activation: str) -> str:
    """An elementwise activation (the convolution stages apply it to each number; ``gated``
    needs twice the channels of every stage and is for the MLP parts only)."""
    if activation not in ELEMENTWISE:
        raise ValueError(
            f"the convolutional parts take an elementwise activation ({', '.join(ELEMENTWISE)}), "
            f"not {activation!r}: --activation gated is for the MLP encoder and decoder"
        )
    return activation


def check_channels(channels: Sequence[int]) -> tuple[int, ...]:
    """``channels`` as a tuple of 1 to :data:`MAX_STAGES` widths from 1 to
    :data:`MAX_CHANNELS` (a number from a config file is bounded before anything is built)."""
    ok = isinstance(channels, Sequence) and not isinstance(channels, str)
    values = tuple(channels) if ok else ()
    if not (
        1 <= len(values) <= MAX_STAGES
        and all(isinstance(c, int) and not isinstance(c, bool) for c in values)
        and all(1 <= c <= MAX_CHANNELS for c in values)
    ):
        raise ValueError(
            f"channels must be a list of 1 to {MAX_STAGES} integers from 1 to {MAX_CHANNELS}, "
            f"got {channels!r:.60}"
        )
    return values


def stage_sizes(height: int, width: int, stages: int) -> list[tuple[int, int, int]]:
    """``(height, width, stride)`` after each stage, the input first (stride 0)."""
    sizes = [(height, width, 0)]
    for _ in range(stages):
        h, w, _ = sizes[-1]
        stride = 2 if min(h, w) > MIN_SIDE else 1
        sizes.append((-(-h // stride), -(-w // stride), stride))
    return sizes


class ConvEncoder(nn.Sequential):
    """``[..., C*H*W] -> [..., out_dim]``: 3x3 convolutions with ``channels`` outputs (each
    followed by the activation), flattened, then ``hidden`` fully connected layers and a linear
    output layer (``self[-1]``, as in :class:`~.nets.MLP`)."""

    def __init__(
        self,
        image_shape: Sequence[int],
        hidden: Sequence[int],
        out_dim: int,
        activation: str = "relu",
        channels: Sequence[int] = DEFAULT_CHANNELS,
    ) -> None:
        channels = check_channels(channels)
        check_activation(activation)
        c, h, w = image_shape_3d(image_shape, math.prod(image_shape))
        sizes = stage_sizes(h, w, len(channels))
        layers: list[nn.Module] = []
        width = c
        for out, (_, _, stride) in zip(channels, sizes[1:], strict=True):
            layers += [nn.Conv2d(width, out, 3, stride, 1), ACTIVATIONS[activation]()]
            width = out
        layers.append(nn.Flatten(1))
        head = MLP(width * sizes[-1][0] * sizes[-1][1], hidden, out_dim, activation)
        super().__init__(*layers, *head)
        self.image_shape = (c, h, w)
        self.in_dim, self.out_dim = c * h * w, out_dim
        self.activation_width = _widths(channels, sizes) + sum(hidden) + out_dim
        """Numbers its layers produce per image (for the memory estimate)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        out = super().forward(x.reshape(-1, *self.image_shape))
        return out.reshape(*lead, self.out_dim)


class ConvDecoder(Decoder):
    """f(z) for image data: ``latent_dim -> reversed(hidden) -> channels[-1] x h x w``, then
    3x3 transposed convolutions retracing the encoder's stages back to ``H x W`` with
    ``param_dim * C`` channels (``param_dim = out_dim / D``, the likelihood's outputs per pixel),
    returned flat as ``param_dim`` blocks of D values. ``image_shape`` is the data set's
    (the library passes it); ``channels`` are the encoder's, mirrored."""

    def __init__(
        self,
        latent_dim: int,
        out_dim: int,
        data_dim: int,
        image_shape: Sequence[int] | None = None,
        hidden: Sequence[int] = (400,),
        activation: str = "relu",
        channels: Sequence[int] = DEFAULT_CHANNELS,
    ) -> None:
        super().__init__(latent_dim, out_dim)
        shape = image_shape_3d(image_shape, data_dim, "decoder")
        channels = check_channels(channels)
        check_activation(activation)
        if out_dim % data_dim:
            raise ValueError(f"out_dim={out_dim} is not a multiple of data_dim={data_dim}")
        self.image_shape, self.param_dim = shape, out_dim // data_dim
        sizes = stage_sizes(shape[1], shape[2], len(channels))
        self.start = (channels[-1], sizes[-1][0], sizes[-1][1])
        self.fc = MLP(latent_dim, list(reversed(list(hidden))), math.prod(self.start), activation)
        layers: list[nn.Module] = [ACTIVATIONS[activation]()]
        widths = [*reversed(channels[:-1]), self.param_dim * shape[0]]
        width = channels[-1]
        for i, out in enumerate(widths):
            (h, w, _), (h_in, w_in, stride) = sizes[-2 - i], sizes[-1 - i]
            pad = (h - (h_in - 1) * stride - 1, w - (w_in - 1) * stride - 1)  # 0 or 1 each
            layers.append(nn.ConvTranspose2d(width, out, 3, stride, 1, output_padding=pad))
            if i < len(widths) - 1:
                layers.append(ACTIVATIONS[activation]())
            width = out
        self.up = nn.Sequential(*layers)
        self.activation_width = sum(hidden) + _widths(channels, sizes) + out_dim
        """Numbers its layers produce per code (for the memory estimate)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        h = self.fc(z.reshape(-1, self.latent_dim)).reshape(-1, *self.start)
        return self.up(h).reshape(*lead, self.out_dim)


def _widths(channels: Sequence[int], sizes: list[tuple[int, int, int]]) -> int:
    """Numbers the stages produce per image: channels times pixels after each stage."""
    return sum(c * h * w for c, (h, w, _) in zip(channels, sizes[-len(channels) :], strict=True))


def encoder_body(
    encoder: str,
    data_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    activation: str,
    image_shape: Sequence[int] | None,
    channels: Sequence[int] | None,
) -> nn.Sequential:
    """A guide's network: an :class:`~.nets.MLP` on the flat pixels (``encoder="mlp"``) or a
    :class:`ConvEncoder` on the images (``"conv"``)."""
    if encoder not in BODIES:
        raise ValueError(f"unknown encoder {encoder!r}; choose from {list(BODIES)}")
    if encoder == "mlp":
        if channels is not None:
            raise ValueError("channels is an option of encoder 'conv' only")
        return MLP(data_dim, hidden, out_dim, activation)
    shape = image_shape_3d(image_shape, data_dim, "encoder")
    return ConvEncoder(shape, hidden, out_dim, activation, channels or DEFAULT_CHANNELS)
