"""Checking the contents of a run's tensor files other than the checkpoint (the baseline's
mixtures, the autoencoder, per-image points) before anything computes with them: each may come
from someone else, and a missing key, a wrong shape or an expanded tensor (a few stored numbers
posing as billions) is refused with :class:`CheckpointError` naming the file, never a traceback
or an allocation of what the tensor pretends to hold."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.distributions import constraints

from ..errors import CheckpointError
from ..infer.marginal import MarginalEstimate
from ..infer.resume import dense_tensor
from ..model.mixtures import BernoulliMixture, GaussianMixture, Mixture

MIXTURE_KINDS: dict[str, type[Mixture]] = {
    "GaussianMixture": GaussianMixture,
    "BernoulliMixture": BernoulliMixture,
}
MAX_COMPONENTS = 100_000


def _refuse(where: Path, what: str) -> CheckpointError:
    return CheckpointError(
        f"{where}: {what}; the file is corrupt or not pyro-vae's: delete it (and recompute it "
        "if needed)."
    )


def _tensor(value: Any, where: Path, what: str, shape: tuple[int, ...]) -> torch.Tensor:
    """A dense, finite float64 tensor (what mixtures compute in) of exactly ``shape``."""
    try:
        value = dense_tensor(value, where, what)
    except CheckpointError:
        raise _refuse(where, f"{what} is missing, not a tensor or an expanded one") from None
    if tuple(value.shape) != shape or value.dtype != torch.float64:
        raise _refuse(where, f"{what} is {value.dtype} {tuple(value.shape)}, not float64 {shape}")
    if not bool(torch.isfinite(value).all()):
        raise _refuse(where, f"{what} holds NaN or infinite values")
    return value


def check_weights(module: torch.nn.Module, state: Any, where: Path) -> None:
    """Refuse a saved weight that is not a dense tensor of its parameter's dtype (a sparse,
    quantized, float64, integer or complex one), before
    :func:`~pyro_vae.app.vae_build.load_model_state` compares keys and shapes and copies: the
    copy would convert it silently, or fail with a traceback. What is missing or of another
    shape is left to that function to name."""
    if not isinstance(state, Mapping):
        return
    for key, expected in module.state_dict().items():
        saved = state.get(key)
        if not isinstance(saved, torch.Tensor):
            continue
        if (
            saved.layout == torch.strided
            and not saved.is_quantized
            and saved.dtype == (expected.dtype)
        ):
            continue
        kind = str(saved.layout).removeprefix("torch.").replace("strided", "dense")
        dtype = str(saved.dtype).removeprefix("torch.")
        raise CheckpointError(
            f"{where}: parameter {key!r} is a {kind} {dtype} tensor; only a dense "
            f"{str(expected.dtype).removeprefix('torch.')} tensor of shape "
            f"{tuple(expected.shape)} (the parameter's dtype and shape) is accepted. The "
            "checkpoint is corrupt or not pyro-vae's."
        )


def checked_mixture(state: Any, where: Path, data_dim: int | None = None) -> Mixture:
    """The best mixture of a ``baseline_mixtures.pt`` state (``{"mixtures": [...], "best":
    K}``), each field of every mixture checked (a malformed one that is not the best still
    means a corrupt file): kinds, options, and every tensor's shape (``data_dim`` dimensions
    when given), finiteness and range."""
    if not isinstance(state, Mapping) or not isinstance(state.get("mixtures"), list):
        raise _refuse(where, "no list of mixtures")
    best = state.get("best")
    mixtures = [mixture_from_state(m, where, data_dim) for m in state["mixtures"]]
    chosen = [m for m in mixtures if m.n_components == best]
    if isinstance(best, bool) or not isinstance(best, int) or len(chosen) != 1:
        raise _refuse(where, f"the best mixture ({best!r}) is not exactly one of those saved")
    return chosen[0]


def mixture_from_state(m: Any, where: Path, data_dim: int | None = None) -> Mixture:
    """One mixture of a saved state (``Mixture.state_dict()``), every field checked."""
    if not isinstance(m, Mapping):
        raise _refuse(where, "a mixture is not a mapping")
    cls = MIXTURE_KINDS.get(m.get("kind"))  # type: ignore[arg-type]
    k, options = m.get("n_components"), m.get("options")
    if cls is None or not isinstance(k, int) or isinstance(k, bool) or not 0 < k <= MAX_COMPONENTS:
        raise _refuse(
            where,
            f"a mixture of an unknown kind ({m.get('kind')!r:.60}; known: "
            f"{', '.join(MIXTURE_KINDS)}) or component count ({k!r:.30})",
        )
    if not isinstance(options, Mapping):
        raise _refuse(where, "a mixture's options are not a mapping")
    try:
        mixture = cls(k, **{"init": "kmeans++", **options})
    except (TypeError, ValueError):  # ConfigError is a ValueError
        raise _refuse(where, f"a mixture's options are invalid: {dict(options)!r:.200}") from None
    history = m.get("history")
    if not isinstance(history, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in history
    ):
        raise _refuse(where, "a mixture's history is not a list of numbers")
    means = m.get("means", m.get("probs"))
    d = means.shape[-1] if isinstance(means, torch.Tensor) and means.dim() == 2 else -1
    if d < 1 or (data_dim is not None and d != data_dim):
        raise _refuse(where, f"the mixture is not over {data_dim or 'the'} data dimensions")
    shapes = {"weights": (k,), "means": (k, d), "variances": (k, d), "probs": (k, d)}
    shapes["scale_tril"] = (k, d, d)
    for name in ("weights", *mixture._STATE):
        setattr(mixture, name, _tensor(m.get(name), where, f"the mixture's {name}", shapes[name]))
    _check_mixture_values(mixture, where)
    mixture.history, mixture.fitted = list(history), True
    return mixture


def _check_mixture_values(mixture: Mixture, where: Path) -> None:
    w = mixture.weights
    if bool((w < 0).any()) or not math.isclose(float(w.sum()), 1.0, abs_tol=1e-4):
        raise _refuse(where, "the mixture's weights are not probabilities summing to 1")
    if isinstance(mixture, BernoulliMixture):
        p = mixture.probs
        if not bool(((p > 0) & (p < 1)).all()):
            raise _refuse(where, "the mixture's probabilities are not all strictly in (0, 1)")
    elif mixture.covariance == "diag":
        if not bool((mixture.variances > 0).all()):
            raise _refuse(where, "the mixture's variances are not all positive")
    elif not bool(constraints.lower_cholesky.check(mixture.scale_tril).all()):
        raise _refuse(
            where, "the mixture's scale_tril is not lower triangular with positive diagonal"
        )


@dataclass(frozen=True)
class Points:
    """The per-image values of one estimate, checked (:func:`checked_points`): ``log_px``, a
    non-empty vector of numbers, and every value the file holds by name (``elbo``, ``ess``,
    ``khat`` and ``num_samples`` beside it for importance sampling; ``log_weights``,
    ``acceptance``, ``step_size`` for AIS; ``upper``, ``is_log_px`` for BDMC)."""

    log_px: torch.Tensor
    values: Mapping[str, Any]

    def marginal_estimate(self) -> MarginalEstimate | None:
        """The importance-sampling estimate these are the values of (``None``: the file does
        not hold all of them)."""
        names = [f.name for f in dataclasses.fields(MarginalEstimate)]
        if not all(name in self.values for name in names):
            return None
        return MarginalEstimate(**{name: self.values[name] for name in names})


def checked_points(points: Any, where: Path) -> Points:
    """A per-image points file: ``log_px`` a dense vector of finite numbers (no NaN; an
    expanded tensor is refused before anything allocates what it pretends to hold), and every
    other tensor in it dense."""
    if not isinstance(points, Mapping) or "log_px" not in points:
        raise CheckpointError(f"{where}: holds no per-image log_px")
    for key, value in points.items():
        if isinstance(value, torch.Tensor):
            try:
                dense_tensor(value, where, str(key))
            except CheckpointError:
                raise _refuse(where, f"{key} is an expanded tensor") from None
    log_px = points["log_px"]
    if not isinstance(log_px, torch.Tensor) or log_px.dim() != 1 or not len(log_px):
        raise _refuse(where, "log_px is not a non-empty vector")
    if not log_px.is_floating_point() or bool(torch.isnan(log_px).any()):
        raise _refuse(where, "log_px is not all numbers (it holds NaN)")
    return Points(log_px, dict(points))
