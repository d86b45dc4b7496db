"""The reference: the PyTorch examples' VAE in plain PyTorch, scored as pyro-vae scores its own.

The model and recipe of ``pytorch/examples``' ``vae/main.py``: a 784-400-20 encoder with two
heads (mean and log-variance), a 20-400-784 decoder with a sigmoid output, trained on grey levels
in [0, 1] with binary cross-entropy plus the analytic KL, Adam 10^-3, batch 128. It is trained
on pyro-vae's training split of Fashion-MNIST (the 50,000 images that are not the validation
split) and scored on exactly the tensor pyro-vae evaluates binarized models on: one seeded
Bernoulli draw of the 10,000 test images, importance-sampled log p(x) with K samples per image
(the network wrapped as a Pyro model and guide, so the estimator is the library's
``log_marginal``). Writes ``RUNS_DIR/reference-E/evaluation_points.pt`` (per-image values,
for paired differences) and ``evaluation.json``.

    python experiments/reference_vae.py [--epochs 10] [--num-samples 1000]

Seconds per epoch count the training steps only (no validation pass), for the speed
comparison of issue 12.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from common import get_args_parser
from torch import nn

from pyro_vae import eval_view, load_dataset, log_marginal, save_checkpoint
from pyro_vae.app.checkpoint import atomic_write_text
from pyro_vae.data.pixels import unit_interval
from pyro_vae.store.evaluation import ISEvaluation
from pyro_vae.store.fields import RecordError, count, number, text
from pyro_vae.store.strict_json import JSONContentError, parse_json


@dataclass(frozen=True, kw_only=True)
class ReferenceEvaluation(ISEvaluation):
    """The reference's ``evaluation.json``: its importance-sampling estimate, the model named
    in words, and how it was trained."""

    WHAT: ClassVar[str] = "the reference's evaluation"

    model: str | None = text(omit=True)  # type: ignore[assignment]  # words, not a description
    epochs: int = count()
    batch_size: int = count()
    lr: float = number()
    train_seconds_per_epoch: float = number()


def _saved(path: Path) -> ReferenceEvaluation | None:
    """The reference's evaluation in ``path`` (``None``: none there, or not one)."""
    try:
        return ReferenceEvaluation.from_json(parse_json(path.read_text()))
    except (OSError, ValueError, JSONContentError, RecordError):
        return None


class ReferenceVAE(nn.Module):
    """pytorch/examples' VAE (784-400-20-400-784)."""

    def __init__(self, data_dim: int = 784, hidden: int = 400, latent: int = 20) -> None:
        super().__init__()
        self.fc1 = nn.Linear(data_dim, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, data_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.fc1(x))
        return self.fc21(h), self.fc22(h)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc4(F.relu(self.fc3(z)))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """BCE (summed over pixels and the batch) + KL(q || N(0, I)), as in the example."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        bce = F.binary_cross_entropy_with_logits(self.decode_logits(z), x, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return bce + kld

    # The same network as a Pyro program, for the library's estimator.
    def model(self, x: torch.Tensor) -> None:
        with pyro.plate("data", x.shape[-2], dim=-1):
            zero = torch.zeros(x.shape[-2], self.fc21.out_features)
            z = pyro.sample("z", dist.Normal(zero, 1.0).to_event(1))
            pyro.sample("x", dist.Bernoulli(logits=self.decode_logits(z)).to_event(1), obs=x)

    def guide(self, x: torch.Tensor) -> None:
        mu, logvar = self.encode(x)
        with pyro.plate("data", x.shape[-2], dim=-1):
            pyro.sample("z", dist.Normal(mu, torch.exp(0.5 * logvar)).to_event(1))


def train(vae: ReferenceVAE, x: torch.Tensor, epochs: int, batch: int, lr: float) -> list[float]:
    """Adam on the example's loss; returns the training seconds of each epoch."""
    optimizer = torch.optim.Adam(vae.parameters(), lr=lr)
    seconds = []
    for epoch in range(epochs):
        start, total = time.perf_counter(), 0.0
        for idx in torch.randperm(len(x)).split(batch):
            loss = vae.loss(x[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        seconds.append(time.perf_counter() - start)
        print(f"epoch {epoch + 1}: loss {total / len(x):.3f} nats per image ({seconds[-1]:.1f} s)")
    return seconds


def reference_run(
    data,
    out: Path,
    epochs: int,
    num_samples: int,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 1e-3,
) -> ReferenceEvaluation:
    """Train the reference on ``data``'s training split and score it on the static test
    tensor; the summary (and per-image values in ``out/evaluation_points.pt``) is reused when
    ``out`` already holds one with these settings."""
    wanted = dict(epochs=epochs, num_samples=num_samples, seed=seed, batch_size=batch_size, lr=lr)
    saved = out / "evaluation.json"
    if saved.is_file() and (out / "evaluation_points.pt").is_file():
        found = _saved(saved)
        if (
            found is not None
            and all(getattr(found, k) == v for k, v in wanted.items())
            and found.dataset == data.name
        ):
            return found
    torch.manual_seed(seed)
    x_train = unit_interval(data.train, data.levels)  # grey levels, as the example trains
    x_test = eval_view(data.test, data.levels, "static", "test")  # pyro-vae's binarized test set
    vae = ReferenceVAE(data.data_dim)
    seconds = train(vae, x_train, epochs, batch_size, lr)
    vae.eval()
    start = time.perf_counter()
    with torch.no_grad():
        est = log_marginal(vae.model, vae.guide, x_test, num_samples, seed=0)
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out / "evaluation_points.pt", {"log_px": est.log_px, "elbo": est.elbo})
    summary = ReferenceEvaluation.from_json(
        {
            **est.summary(data.data_dim).to_json(),
            "dataset": data.name,
            "pixels": "static",
            "split": "test",
            **wanted,
            "train_seconds_per_epoch": sum(seconds) / len(seconds),
            "seconds": time.perf_counter() - start,
            "model": "pytorch/examples VAE 784-400-20, grey levels, BCE + analytic KL",
        }
    )
    atomic_write_text(saved, json.dumps(summary.to_json(), indent=2) + "\n")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        parents=[
            get_args_parser(
                runs_dir="runs/quality",
                dataset="fashion-mnist",
                epochs=10,
                num_samples=1000,
                seed=0,
            )
        ],
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    data = load_dataset(args.dataset)
    out = Path(args.runs_dir) / f"reference-{args.epochs}"
    summary = reference_run(
        data, out, args.epochs, args.num_samples, args.seed, args.batch_size, args.lr
    )
    print(
        f"test log p(x) {summary.log_px:.2f} ± {summary.log_px_se:.2f} "
        f"(K={args.num_samples}); ELBO {summary.elbo:.2f}; "
        f"{summary.train_seconds_per_epoch:.1f} s per epoch; written: {out}"
    )


if __name__ == "__main__":
    main()
