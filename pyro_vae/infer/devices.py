"""Which device a command runs on: ``auto`` is CUDA when available, else CPU; absent CUDA or
device numbers are one-line errors before any work."""

from __future__ import annotations

import torch

from ..config import parse_device
from ..errors import ConfigError
from ..rng import cuda_devices  # noqa: F401  (re-exported)


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` is CUDA when available, else CPU; asking for absent CUDA is a clear error."""
    if isinstance(name, torch.device):
        name = str(name)
    kind, index = parse_device(name)  # ASCII digits, a known type: refused with one message
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available on this machine; use cpu.")
        if index is not None and index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)."
            )
    return torch.device(kind, index)
