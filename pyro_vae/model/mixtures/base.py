"""The estimator contract every finite mixture shares (fit by EM or by SVI with the assignment
enumerated, exact log p(x), sampling, initialization); see the package's notes."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, TraceEnum_ELBO, config_enumerate
from tqdm.auto import tqdm

from ...errors import ConfigError
from ...rng import random_state

COVARIANCES = ("diag", "full")
INITS = ("kmeans", "kmeans++")


class Mixture(ABC):
    """Shared machinery: exact log-likelihood, EM loop, Pyro model and its SVI fit."""

    weights: torch.Tensor  # [K]

    _KINDS: dict[str, type[Mixture]] = {}
    """pyro-vae's own mixtures by class name (a state dict's ``kind``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith(__name__.rsplit(".", 1)[0] + "."):
            Mixture._KINDS[cls.__name__] = cls

    def __init__(
        self, n_components: int, seed: int = 0, init: str = "kmeans", n_init: int = 1
    ) -> None:
        if not isinstance(n_components, int) or n_components < 1:
            raise ConfigError(f"n_components must be a positive integer, got {n_components!r}")
        if init not in INITS:
            raise ConfigError(f"init must be one of {INITS}, got {init!r}")
        if isinstance(n_init, bool) or not isinstance(n_init, int) or n_init < 1:
            raise ConfigError(f"n_init must be a positive integer, got {n_init!r}")
        self.n_components = n_components
        self.seed = seed
        self.init = init
        self.n_init = n_init
        self.history: list[float] = []
        self.fitted = False

    # ---------------------------------------------------------------- to implement
    @abstractmethod
    def component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x_n | component k): ``[N, K]``."""

    @abstractmethod
    def _init_params(self, x: torch.Tensor, centers: torch.Tensor) -> None: ...

    @abstractmethod
    def _m_step(self, x: torch.Tensor, resp: torch.Tensor) -> None: ...

    @abstractmethod
    def _pyro_params(self) -> dict[str, torch.Tensor]:
        """Register the parameters with ``pyro.param`` (with their constraints)."""

    @abstractmethod
    def _read_pyro_params(self, params: dict[str, torch.Tensor]) -> None: ...

    @abstractmethod
    def _component(self, params: dict[str, torch.Tensor], k: torch.Tensor) -> dist.Distribution:
        """The distribution of x given assignments ``k`` (event shape ``(D,)``)."""

    @abstractmethod
    def component_means(self) -> torch.Tensor:
        """E[x | component k]: ``[K, D]``."""

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor: ...

    @property
    @abstractmethod
    def num_parameters(self) -> int: ...

    # ---------------------------------------------------------------- exact likelihood
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x_n) = logsumexp_k (log pi_k + log p(x_n | k)): ``[N]``."""
        self._check_fitted()
        x = self._as_data(x)
        return torch.logsumexp(self.weights.log() + self.component_log_prob(x), dim=-1)

    def score(self, x: torch.Tensor) -> float:
        """Mean log-likelihood per data point (nats), like scikit-learn's ``score``."""
        return self.log_prob(x).mean().item()

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        """p(component k | x_n): ``[N, K]``."""
        log_joint = self.weights.log() + self.component_log_prob(self._as_data(x))
        return torch.softmax(log_joint, dim=-1)

    # ---------------------------------------------------------------- fitting
    def fit(
        self,
        x: torch.Tensor,
        method: str = "em",
        max_iter: int = 200,
        tol: float = 1e-5,
        steps: int = 2000,
        lr: float = 0.01,
        progress: bool = False,
    ) -> Mixture:
        """Fit to ``x`` (``[N, D]``) by EM (until the mean log-likelihood gains less than
        ``tol`` nats per point, at most ``max_iter`` iterations; from each of ``n_init``
        initializations, keeping the best final training log-likelihood) or by SVI (``steps``
        Adam steps on TraceEnum_ELBO, from the first initialization only). ``self.history``
        holds the mean log-likelihood per iteration of the fit that was kept."""
        x = self._as_data(x)
        if len(x) < self.n_components:
            raise ConfigError(
                f"{self.n_components} components need at least as many training points; "
                f"got {len(x)}. Use fewer components."
            )
        if method not in ("em", "svi"):
            raise ConfigError(f"unknown fitting method {method!r}; use 'em' or 'svi'")
        if method == "svi":
            self._initialize(x, self.seed)
            self.fitted, self.history = True, []
            self._fit_svi(x, steps, lr, progress)
            return self
        best: tuple[float, dict[str, torch.Tensor], list[float]] | None = None
        for i in range(self.n_init):
            self._initialize(x, self.seed + i)
            self.fitted, self.history = True, []
            desc = f"EM, K={self.n_components}"
            if self.n_init > 1:
                desc += f", init {i + 1}/{self.n_init}"
            self._fit_em(x, max_iter, tol, progress, desc)
            if best is None or self.history[-1] > best[0]:
                params = {name: getattr(self, name) for name in ("weights", *self._STATE)}
                best = (self.history[-1], params, self.history)
        assert best is not None
        for name, value in best[1].items():
            setattr(self, name, value)
        self.history = best[2]
        return self

    def _initialize(self, x: torch.Tensor, seed: int) -> None:
        """Starting parameters from one k-means (``init="kmeans"``) or k-means++ centres."""
        if self.init == "kmeans":
            from sklearn.cluster import KMeans

            # scikit-learn's GaussianMixture(init_params="kmeans"): hard labels, then an M-step
            kmeans = KMeans(self.n_components, n_init=1, random_state=random_state(seed)).fit(
                x.numpy()
            )
            resp = torch.zeros(len(x), self.n_components, dtype=x.dtype)
            resp[torch.arange(len(x)), torch.from_numpy(kmeans.labels_).long()] = 1.0
            self._m_step(x, resp)
        else:
            from sklearn.cluster import kmeans_plusplus

            centers, _ = kmeans_plusplus(
                x.numpy(), self.n_components, random_state=random_state(seed)
            )
            self._init_params(x, torch.from_numpy(np.asarray(centers)).to(x.dtype))

    def _fit_em(
        self, x: torch.Tensor, max_iter: int, tol: float, progress: bool, desc: str
    ) -> None:
        bar = tqdm(total=max_iter, desc=desc, disable=not progress)
        converged = False
        for _ in range(max_iter):
            bar.update()
            log_joint = self.weights.log() + self.component_log_prob(x)
            log_px = torch.logsumexp(log_joint, dim=-1)
            self.history.append(log_px.mean().item())
            if not math.isfinite(self.history[-1]):
                raise FloatingPointError(
                    f"EM: the log-likelihood became {self.history[-1]} at iteration "
                    f"{len(self.history)}; check the data for extreme values"
                )
            resp = (log_joint - log_px.unsqueeze(-1)).exp()
            self._m_step(x, resp)
            if len(self.history) > 1 and self.history[-1] - self.history[-2] < tol:
                converged = True
                break
        if converged:  # the bar ends full at the iterations
            bar.total = bar.n  # it took, not stopped at a fraction
            bar.set_postfix_str("converged")
        bar.close()
        self.history.append(self.score(x))

    @config_enumerate
    def model(self, x: torch.Tensor) -> None:
        """The mixture as a Pyro program: a discrete ``"assignment"`` per data point, then
        ``"x"`` observed. Enumerate the assignment with ``TraceEnum_ELBO``."""
        params = self._pyro_params()
        with pyro.plate("data", len(x)):
            k = pyro.sample("assignment", dist.Categorical(params["weights"]))
            pyro.sample("x", self._component(params, k), obs=x)

    @staticmethod
    def guide(x: torch.Tensor) -> None:
        """Empty: the only latent variable, the assignment, is enumerated in the model."""
        return None

    def _fit_svi(self, x: torch.Tensor, steps: int, lr: float, progress: bool) -> None:
        store = pyro.get_param_store()
        with store.scope():  # the mixture's parameters do not mix with anything else
            elbo = TraceEnum_ELBO(max_plate_nesting=1)
            svi = SVI(self.model, self.guide, pyro.optim.Adam({"lr": lr}), elbo)
            bar = tqdm(range(steps), desc=f"SVI, K={self.n_components}", disable=not progress)
            for _ in bar:
                self.history.append(-svi.step(x) / len(x))
            self._read_pyro_params({name: store[name].detach().clone() for name in store})
        self.history.append(self.score(x))

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _as_data(x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x).detach().cpu().double()  # mixtures live on the CPU, in float64
        if x.dim() != 2:
            raise ConfigError(f"expected data of shape [N, D], got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ConfigError("the data contain NaN or infinite values")
        return x

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("fit the mixture first")

    _STATE: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors and numbers (safe for ``torch.load(weights_only=True)``)."""
        self._check_fitted()
        state = {name: getattr(self, name) for name in ("weights", *self._STATE)}
        return {
            "kind": type(self).__name__,
            "n_components": self.n_components,
            "options": self._options(),
            "history": list(self.history),
            **state,
        }

    @staticmethod
    def from_state_dict(state: dict[str, Any]) -> Mixture:
        cls = Mixture._KINDS[state["kind"]]
        # state dicts from before ``init`` existed were fitted from k-means++ centres
        options = {"init": "kmeans++", **state["options"]}
        mixture = cls(state["n_components"], **options)
        for name in ("weights", *mixture._STATE):
            if name in state:
                setattr(mixture, name, state[name])
        mixture.history, mixture.fitted = list(state["history"]), True
        return mixture

    def _options(self) -> dict[str, Any]:
        return {"seed": self.seed, "init": self.init, "n_init": self.n_init}
