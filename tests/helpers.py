"""Helpers shared by the three test stages (tests/unit, tests/integration, tests/e2e).

Test modules import what they share from here, never from one another (``tests/`` is on the
path through the top-level ``conftest.py``). Fixtures live in ``conftest.py``.
"""

from __future__ import annotations

import importlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

import pyro
import pyro.distributions as dist
import torch

from pyro_vae import write_idx
from pyro_vae.app.evaluations import read_evaluations
from pyro_vae.app.runs import RunDirectory
from pyro_vae.cli import main

REPO = Path(__file__).resolve().parents[1]


def experiment_module(name: str):
    """An ``experiments/`` script imported as a module, as it runs (its folder on the path, so
    that it finds the scripts it imports from)."""
    folder = str(REPO / "experiments")
    sys.path.insert(0, folder)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(folder)


FIXTURES = Path(__file__).resolve().parent / "fixtures"


# ------------------------------------------------------------------------- the command line
def tiny(
    epochs: int | None = 1,
    hidden: int = 16,
    latent_dim: int = 3,
    eval_particles: int | None = None,
) -> list[str]:
    """The options of a tiny model on digits (``--quiet``); ``None`` leaves an option out."""
    argv = [] if epochs is None else ["--epochs", str(epochs)]
    argv += ["--hidden", str(hidden), "--latent-dim", str(latent_dim), "--quiet"]
    if eval_particles is not None:
        argv += ["--eval-particles", str(eval_particles)]
    return argv


def exit_code(argv: list[str]) -> int:
    """``main``'s exit status, whether it returns it or exits with it (usage errors)."""
    try:
        return main(argv)
    except SystemExit as exc:  # usage errors leave through argparse's exit
        return int(exc.code)


def train_tiny(root: Path, name: str, args: list[str], *extra: str) -> Path:
    """``pyro-vae train ARGS EXTRA`` into ``root/name`` in this process; the run's directory."""
    assert main(["train", *args, *extra, "--runs-dir", str(root), "--name", name]) == 0
    return root / name


def cli(*args: str) -> list[str]:
    """The command line as a child process runs it."""
    return [sys.executable, "-m", "pyro_vae", *args]


def file_stamps(path: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``path`` (but a run's lock) with its size and modification time."""
    return {
        str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


# ---------------------------------------------------------------------------- result files
def is_summary(run_dir: str | Path, split: str = "test") -> dict[str, Any]:
    """The importance-sampling summary with the largest K that the run holds for ``split``
    (its JSON value: as written in the file)."""
    found = read_evaluations(RunDirectory(Path(run_dir)), split).largest_is()
    assert found is not None, f"no importance-sampling evaluation in {run_dir}"
    return found.to_json()


# ------------------------------------------------------------------------------ data files
def make_idx_files(
    directory: Path, n_train: int = 120, n_test: int = 30, gz: bool = True, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Write a small MNIST-like data set (28x28 uint8 images, labels 0-9) as IDX files."""
    g = torch.Generator().manual_seed(seed)
    tensors = {
        "train-images-idx3-ubyte": torch.randint(
            0, 256, (n_train, 28, 28), generator=g, dtype=torch.uint8
        ),
        "train-labels-idx1-ubyte": torch.randint(0, 10, (n_train,), generator=g, dtype=torch.uint8),
        "t10k-images-idx3-ubyte": torch.randint(
            0, 256, (n_test, 28, 28), generator=g, dtype=torch.uint8
        ),
        "t10k-labels-idx1-ubyte": torch.randint(0, 10, (n_test,), generator=g, dtype=torch.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for stem, tensor in tensors.items():
        write_idx(directory / (stem + (".gz" if gz else "")), tensor)
    return tensors


# ---------------------------------------------------------------- a model with exact answers
D, K_LATENT, NOISE = 5, 2, 0.5


class LinearGaussian:
    """z ~ N(0, I), x | z ~ N(W z + b, s^2 I)  =>  x ~ N(b, W W^T + s^2 I); hand-written Pyro."""

    def __init__(self, seed: int = 0, pixel_plate: bool = False):
        g = torch.Generator().manual_seed(seed)
        self.W = torch.randn(D, K_LATENT, generator=g, dtype=torch.float64)
        self.b = torch.randn(D, generator=g, dtype=torch.float64)
        self.s = NOISE
        self.pixel_plate = pixel_plate
        eye = torch.eye(K_LATENT, dtype=torch.float64)
        self.post_cov = torch.linalg.inv(eye + self.W.T @ self.W / self.s**2)

    def model(self, x):
        zeros = torch.zeros(K_LATENT, dtype=torch.float64)
        prior = dist.Normal(zeros, torch.ones_like(zeros)).to_event(1)
        if self.pixel_plate:  # the pixels as a plate nested in the data plate
            with pyro.plate("data", len(x), dim=-2):
                z = pyro.sample("z", prior)  # [N, 1, k]
                mean = (z @ self.W.T + self.b).squeeze(-2)
                with pyro.plate("pixels", D, dim=-1):
                    pyro.sample("x", dist.Normal(mean, self.s), obs=x)
            return
        with pyro.plate("data", len(x)):
            z = pyro.sample("z", prior)
            pyro.sample("x", dist.Normal(z @ self.W.T + self.b, self.s).to_event(1), obs=x)

    def posterior_mean(self, x):
        return (x - self.b) @ self.W / self.s**2 @ self.post_cov

    def exact_guide(self, x):
        tril = torch.linalg.cholesky(self.post_cov)
        loc = self.posterior_mean(x)
        if self.pixel_plate:
            with pyro.plate("data", len(x), dim=-2):
                pyro.sample("z", dist.MultivariateNormal(loc.unsqueeze(-2), scale_tril=tril))
            return
        with pyro.plate("data", len(x)):
            pyro.sample("z", dist.MultivariateNormal(loc, scale_tril=tril))

    def shifted_guide(self, offset: float, widen: float):
        sd = self.post_cov.diagonal().sqrt()

        def guide(x):
            with pyro.plate("data", len(x)):
                loc = self.posterior_mean(x) + offset * sd
                pyro.sample("z", dist.Normal(loc, widen * sd).to_event(1))

        return guide

    def data(self, n: int, seed: int = 1) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, K_LATENT, generator=g, dtype=torch.float64)
        return z @ self.W.T + self.b + self.s * torch.randn(n, D, generator=g, dtype=torch.float64)

    def log_px(self, x):
        cov = self.W @ self.W.T + self.s**2 * torch.eye(D, dtype=torch.float64)
        return dist.MultivariateNormal(self.b, covariance_matrix=cov).log_prob(x)


def default_sigint() -> None:
    """``preexec_fn`` of a child that a test stops with SIGINT: as in a terminal's foreground
    job. A shell without job control starts background commands (pytest under ``cmd &``, or
    ``nohup``) with SIGINT ignored, children inherit that, and Python then leaves it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_shape(run: Path) -> dict:
    """What a run directory holds: file names, metric fields, configuration keys."""
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    config = json.loads((run / "config.json").read_text())
    return {
        "files": sorted(p.name for p in run.iterdir()),
        "metrics": [sorted(m) for m in metrics],
        "config": {k: sorted(v) if isinstance(v, dict) else v for k, v in config.items()},
    }


def eager_and_traced_elbo(vae, x: torch.Tensor, num_data: int = 400):
    """The eager ``Trace_ELBO``'s loss and gradients and those of ``--elbo compiled``'s graph
    (``make_fx``'s, run as traced, not handed to Inductor: the first call records it, the second
    runs it), each with the noise of seed 3: ``(eager, traced, compiled_elbo, graphs)``, where
    eager and traced are ``(loss, [grad per parameter])``."""
    from pyro.infer import Trace_ELBO

    from pyro_vae.infer.compiled import CompiledTraceELBO

    def loss_and_grads(loss_fn):
        for p in vae.parameters():
            p.grad = None
        torch.manual_seed(3)
        loss = loss_fn(vae.model, vae.guide, x, num_data=num_data)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in vae.parameters()]

    graphs: list = []
    compiled = CompiledTraceELBO(max_plate_nesting=1, compiler=lambda g: graphs.append(g) or g)
    with pyro.validation_enabled(False):
        eager = loss_and_grads(Trace_ELBO(max_plate_nesting=1).differentiable_loss)
        for _ in range(2):
            traced = loss_and_grads(compiled.differentiable_loss)
    return eager, traced, compiled, graphs
