"""Checks on data before any training or evaluation starts: each failure names the problem and
the fix (never a shape error from deep inside a network, nor a NaN loss twenty minutes later).
"""

from __future__ import annotations

import torch

from ..errors import DataFormatError


def check_observations(
    x: torch.Tensor, name: str = "data", binary: bool = False, data_dim: int | None = None
) -> None:
    """``x`` must be a non-empty ``[N, D]`` floating-point tensor of finite values; with
    ``binary``, every value 0 or 1; with ``data_dim``, D must equal it."""
    if not isinstance(x, torch.Tensor):
        raise DataFormatError(f"{name}: expected a torch.Tensor, got {type(x).__name__}.")
    if x.dim() != 2:
        raise DataFormatError(
            f"{name}: expected shape [N, D] (one flattened example per row), got "
            f"{tuple(x.shape)}. Flatten images with x.reshape(len(x), -1)."
        )
    if x.shape[0] == 0:
        raise DataFormatError(f"{name}: holds no examples.")
    if data_dim is not None and x.shape[1] != data_dim:
        raise DataFormatError(
            f"{name}: examples have {x.shape[1]} dimensions but the model expects {data_dim}."
        )
    if not x.is_floating_point():
        raise DataFormatError(f"{name}: expected floating-point values, got {x.dtype}.")
    finite = torch.isfinite(x)
    if not finite.all():
        bad = (~finite).nonzero()[0].tolist()
        nan, inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
        kinds = " and ".join(f"{n} {k}" for n, k in ((nan, "NaN"), (inf, "infinite")) if n)
        raise DataFormatError(
            f"{name}: {kinds} value(s), the first at row {bad[0]}, column {bad[1]}. Remove or "
            "impute them before training."
        )
    if binary:
        off = (x != 0) & (x != 1)
        if off.any():
            row, col = off.nonzero()[0].tolist()
            raise DataFormatError(
                f"{name}: the Bernoulli likelihood needs binary values, but {int(off.sum())} "
                f"are neither 0 nor 1 (e.g. {x[row, col].item():g} at row {row}, column {col}). "
                "Binarize the data (--pixels dynamic or static), or ask for the Bernoulli "
                "formula on grey levels explicitly (--pixels grey)."
            )
