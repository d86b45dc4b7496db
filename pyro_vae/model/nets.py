"""Neural-network building blocks shared by encoders and decoders."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "softplus": nn.Softplus,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
}


class MLP(nn.Sequential):
    """``in_dim -> hidden[0] -> … -> hidden[-1] -> out_dim``, an activation after each hidden
    layer and none after the output. Works on any leading batch shape."""

    def __init__(
        self, in_dim: int, hidden: Sequence[int], out_dim: int, activation: str = "relu"
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {list(ACTIVATIONS)}")
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            width = h
        layers.append(nn.Linear(width, out_dim))
        super().__init__(*layers)
        self.in_dim, self.out_dim = in_dim, out_dim
