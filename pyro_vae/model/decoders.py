"""Decoders f_theta(z) (contract: :class:`pyro_vae.model.parts.Decoder`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .conv import ConvDecoder
from .nets import MLP
from .parts import Decoder


class MLPDecoder(Decoder):
    """``latent_dim -> reversed(hidden) -> out_dim``: the mirror image of an MLP encoder with
    hidden widths ``hidden``, an activation after each hidden layer and none after the output.

    Its layers are registered as ``0, 1, ...`` (as in ``nn.Sequential``), so checkpoints of
    the plain-MLP decoder load unchanged.
    """

    def __init__(
        self,
        latent_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (400,),
        activation: str = "relu",
    ) -> None:
        super().__init__(latent_dim, out_dim)
        mlp = MLP(latent_dim, list(reversed(list(hidden))), out_dim, activation)
        for name, layer in mlp.named_children():
            self.add_module(name, layer)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            z = layer(z)
        return z


DECODERS: dict[str, type[Decoder]] = {"mlp": MLPDecoder, "conv": ConvDecoder}
"""Built-in decoders by short name (``--decoder``)."""
