"""Neural-network building blocks shared by encoders and decoders."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "softplus": nn.Softplus,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gated": nn.GLU,
}
"""Activations by name (``--activation``). ``gated`` is not elementwise: a hidden layer of
width h becomes ``Linear(width, 2 h)`` then ``GLU``, h = a * sigmoid(b) for the two halves
(Dauphin et al. 2017; the gated dense layers of Tomczak & Welling's VampPrior networks), so use
:func:`hidden_layer` rather than the class alone."""

GATED = "gated"
ELEMENTWISE: tuple[str, ...] = tuple(name for name in ACTIVATIONS if name != GATED)
"""The activations that apply one function to each number (the convolutional parts' choice)."""


def hidden_layer(width: int, out: int, activation: str) -> list[nn.Module]:
    """A fully connected hidden layer ``width -> out`` and its activation (gated: ``Linear(width,
    2 out)`` and ``GLU``)."""
    if activation == GATED:
        return [nn.Linear(width, 2 * out), nn.GLU(dim=-1)]
    return [nn.Linear(width, out), ACTIVATIONS[activation]()]


class MLP(nn.Sequential):
    """``in_dim -> hidden[0] -> … -> hidden[-1] -> out_dim``, an activation after each hidden
    layer (:func:`hidden_layer`) and none after the output. Works on any leading batch shape."""

    def __init__(
        self, in_dim: int, hidden: Sequence[int], out_dim: int, activation: str = "relu"
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {list(ACTIVATIONS)}")
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers += hidden_layer(width, h, activation)
            width = h
        layers.append(nn.Linear(width, out_dim))
        super().__init__(*layers)
        self.in_dim, self.out_dim = in_dim, out_dim
