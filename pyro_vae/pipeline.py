"""The main job, step by step: load data, build the VAE, train by SVI, evaluate, draw figures.

Each step reads and writes the run directory, so any step can be re-run from it alone (e.g.
``pyro-vae figures RUN_DIR``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyro
import torch

from .autoencoder import Autoencoder, train_autoencoder
from .baseline import (
    DEFAULT_COMPONENTS,
    best_by_validation,
    fit_baselines,
    paired_difference,
)
from .checkpoint import load_checkpoint, save_checkpoint
from .config import RunConfig
from .datasets import CLASS_NAMES, ImageDataset, load_dataset
from .errors import CheckpointError, ConfigError, TrainingInterrupted, first_line
from .gmm import Mixture
from .latent import choose_pairs, embed_2d, interpolation_paths, score_paths
from .likelihoods import LIKELIHOODS
from .marginal import MarginalEstimate, log_marginal
from .objectives import objective_name
from .pixels import eval_view, log_levels, unit_interval
from .plots import (
    plot_elbo_curves,
    plot_image_grid,
    plot_image_panels,
    plot_image_rows,
    plot_interpolations,
    plot_latent_scatter,
)
from .report import write_report
from .rng import seeded_rng
from .runs import RunDirectory, load_vae
from .training import (
    EpochRecord,
    ImageData,
    Trainer,
    check_batch_size,
    resolve_device,
)
from .vae import VAE, build_vae

FIGURE_SEED = 0
TSNE_POINTS = 2000
"""At most this many test images in a t-SNE map (its cost grows with the square)."""


@dataclass
class RunResult:
    run: RunDirectory
    cfg: RunConfig
    history: list[EpochRecord]
    evaluation: dict[str, Any] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    baseline: dict[str, Any] = field(default_factory=dict)


def load_data(cfg: RunConfig) -> ImageDataset:
    return load_dataset(cfg.data.dataset, cfg.data.data_dir, download=cfg.data.download)


def train(
    cfg: RunConfig,
    run: RunDirectory,
    progress: bool = True,
    dataset: ImageDataset | None = None,
    monitor_test: bool = False,
    resume: bool = False,
) -> Trainer:
    """Train the VAE of ``cfg``, checkpointing into ``run`` after every epoch
    (``monitor_test``: also record the test ELBO of every epoch, for plots only).

    With ``resume``, continue from the run's checkpoint (model, optimizer, RNG state and
    history after its last completed epoch) up to ``cfg.train.epochs``: on CPU the result is the
    one an uninterrupted run with the same seed would have reached.
    """
    cfg = cfg.resolved()
    dataset = dataset if dataset is not None else load_data(cfg)
    check_batch_size(cfg, dataset)
    pyro.clear_param_store()
    pyro.set_rng_seed(cfg.train.seed)
    vae = build_vae(cfg.model, dataset.data_dim, cfg.data.pixels)
    # a run stopped before its first epoch ended has no checkpoint yet: it starts over
    state = run.load_checkpoint() if resume and run.checkpoint_path.is_file() else None
    if state is not None:
        if int(state["data_dim"]) != dataset.data_dim:
            raise CheckpointError(
                f"{run.checkpoint_path} was trained on data of dimension {state['data_dim']}, "
                f"not {dataset.data_dim}"
            )
        if int(state["epoch"]) > cfg.train.epochs:
            raise ConfigError(
                f"{run.path} has already trained {state['epoch']} epochs, more than "
                f"{cfg.train.epochs}"
            )
    run.write_config(cfg)

    def on_epoch_end(trainer: Trainer, record: EpochRecord) -> None:
        run.save_checkpoint(trainer.state_dict())
        run.write_metrics([asdict(r) for r in trainer.history])

    x_test = None
    if monitor_test:
        x_test = eval_view(dataset.test, dataset.levels, cfg.data.pixels, "test")
    trainer = Trainer(
        vae, cfg, dataset, progress=progress, on_epoch_end=on_epoch_end, x_test=x_test
    )
    if state is not None:
        try:
            trainer.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(
                f"{run.checkpoint_path} does not match {run.config_path} ({first_line(exc)})"
            ) from exc
        # the metrics file may lag the checkpoint by the epoch a crash interrupted
        run.write_metrics([asdict(r) for r in trainer.history])
        if trainer.epoch < cfg.train.epochs:
            clear_derived_outputs(run)  # they describe the model before these epochs
    try:
        trainer.fit()
    except KeyboardInterrupt:
        raise TrainingInterrupted(
            f"interrupted during epoch {trainer.epoch + 1}; {run.path} holds the model after "
            f"epoch {trainer.epoch}. Continue with: pyro-vae train --resume {run.path}"
        ) from None
    return trainer


DERIVED_OUTPUTS = (
    "evaluation.json",
    "evaluation_points.pt",
    "baseline.json",
    "baseline_mixtures.pt",
    "interpolation.json",
    "autoencoder.pt",
    "report.md",
    "report.html",
)
"""Files computed from a trained model; a resume that trains further makes them stale."""


def clear_derived_outputs(run: RunDirectory) -> None:
    """Remove what describes an earlier state of the model (evaluations, baselines, the
    autoencoder trained alongside, figures, the report)."""
    import shutil

    for name in DERIVED_OUTPUTS:
        run.file(name).unlink(missing_ok=True)
    for path in run.path.glob("evaluation_*.json"):
        path.unlink()
    shutil.rmtree(run.figures_dir, ignore_errors=True)


def resume_config(run_dir: str | Path, epochs: int | None = None) -> RunConfig:
    """The configuration of the run in ``run_dir``, with ``epochs`` (when given) as its new
    target: a run can be continued beyond its first target, never cut short."""
    run = RunDirectory.open(run_dir)
    cfg = run.read_config().resolved()
    if epochs is not None:
        done = int(run.load_checkpoint()["epoch"]) if run.checkpoint_path.is_file() else 0
        if epochs < done:
            raise ConfigError(
                f"{run_dir} has already trained {done} epochs; --epochs {epochs} would cut it short"
            )
        cfg.train.epochs = epochs
    return cfg


def evaluate(
    vae: VAE,
    cfg: RunConfig,
    dataset: ImageDataset,
    device: torch.device,
    num_samples: int = 5000,
    split: str = "test",
    seed: int = 0,
    progress: bool = False,
) -> tuple[dict[str, Any], MarginalEstimate]:
    """Importance-sampled log p(x) of a split (fixed binarization/dequantization), with the
    ELBO from the same draws, standard errors, ESS and Pareto k-hat; nats per image."""
    x = eval_view(dataset.split(split), dataset.levels, cfg.data.pixels, split).to(device)
    start = time.perf_counter()
    estimate = log_marginal(vae.model, vae.guide, x, num_samples, seed=seed, progress=progress)
    summary = estimate.summary(dataset.data_dim, log_levels(cfg.data.pixels, dataset.levels))
    return {
        "dataset": dataset.name,
        "split": split,
        "pixels": cfg.data.pixels,
        "seed": seed,
        **summary,
        "seconds": time.perf_counter() - start,
    }, estimate


def save_evaluation(run: RunDirectory, summary: dict[str, Any], estimate: MarginalEstimate) -> None:
    """``evaluation.json`` and ``evaluation_points.pt`` (per-image values) for the test split;
    ``evaluation_<split>.json`` and ``evaluation_<split>_points.pt`` for another split."""
    suffix = "" if summary.get("split", "test") == "test" else f"_{summary['split']}"
    run.write_json(f"evaluation{suffix}.json", summary)
    save_checkpoint(
        run.file(f"evaluation{suffix}_points.pt"),
        {
            "log_px": estimate.log_px,
            "elbo": estimate.elbo,
            "ess": estimate.ess,
            "khat": estimate.khat,
            "num_samples": estimate.num_samples,
        },
    )


def evaluate_run(
    run_dir: str | Path,
    num_samples: int = 5000,
    split: str = "test",
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """``pyro-vae evaluate``: log p(x) of a trained run, written into its directory."""
    dev = resolve_device(device)
    run, cfg, vae = load_vae(run_dir, dev)
    dataset = load_data(cfg)
    summary, estimate = evaluate(vae, cfg, dataset, dev, num_samples, split, seed, progress)
    save_evaluation(run, summary, estimate)
    return summary


def compare_with_mixtures(
    run: RunDirectory,
    vae: VAE,
    cfg: RunConfig,
    dataset: ImageDataset,
    estimate: MarginalEstimate,
    components: Sequence[int] = DEFAULT_COMPONENTS,
    progress: bool = False,
    fitted: tuple[list[dict[str, Any]], dict[int, Mixture]] | None = None,
) -> dict[str, Any]:
    """The finite-mixture baseline on the same split and metric (exact log p(x)), the VAE's
    paired difference to the best mixture; ``baseline.json`` and ``baseline_mixtures.pt``.
    ``fitted``: mixtures already fitted by :func:`fit_baselines` for this data and pixels."""
    rows, mixtures = fitted or fit_baselines(cfg, dataset, components, progress=progress)
    if not rows:
        return {}
    x_test = eval_view(dataset.test, dataset.levels, cfg.data.pixels, "test")
    best = best_by_validation(rows)
    summary = estimate.summary(dataset.data_dim, log_levels(cfg.data.pixels, dataset.levels))
    payload = {
        "dataset": dataset.name,
        "pixels": cfg.data.pixels,
        "vae": {
            "model": f"VAE ({cfg.model.prior} prior, {cfg.model.guide} guide, "
            f"{cfg.model.likelihood}, latent {cfg.model.latent_dim})",
            "log_px": summary["log_px"],
            "log_px_se": summary["log_px_se"],
            "bits_per_dim": summary["bits_per_dim"],
            "num_parameters": sum(p.numel() for p in vae.parameters()),
            "generative_parameters": generative_parameters(vae),
            "num_samples": estimate.num_samples,
        },
        "mixtures": rows,
        "best_mixture": best["model"],
        "best_chosen_by": "validation log p(x)",
        "vae_minus_best_mixture": paired_difference(
            estimate.log_px, mixtures[best["n_components"]], x_test
        ),
    }
    run.write_json("baseline.json", payload)
    save_checkpoint(
        run.file("baseline_mixtures.pt"),
        {"mixtures": [m.state_dict() for m in mixtures.values()], "best": best["n_components"]},
    )
    return payload


def generative_parameters(vae: VAE) -> int:
    """Parameters of p(x) itself: decoder, prior and likelihood, not the encoder, which only
    serves inference, except where the prior is built from it (the VampPrior's p(z) is the
    encoder's posteriors at pseudo-inputs)."""
    parts = [vae.decoder, vae.prior, vae.likelihood]
    if getattr(vae.prior, "_guide", None) is not None:
        parts.append(vae.encoder)
    seen = {
        id(p): p for part in parts if isinstance(part, torch.nn.Module) for p in part.parameters()
    }
    return sum(p.numel() for p in seen.values())


def write_figures(
    run: RunDirectory, vae: VAE, cfg: RunConfig, dataset: ImageDataset, device: torch.device
) -> list[Path]:
    """ELBO curves, test reconstructions and prior samples, from the run directory's model."""
    figures = run.figures_dir
    shape = dataset.image_shape
    paths = []
    metrics = run.read_metrics()
    if metrics:
        paths.append(
            plot_elbo_curves(
                metrics,
                figures / "elbo_curves.png",
                title=f"{dataset.name}: training curves (latent {cfg.model.latent_dim})",
                objective=objective_name(
                    cfg.train.elbo, cfg.train.particles, cfg.train.beta, cfg.train.kl_warmup
                ),
            )
        )
    n = 16
    x = eval_view(dataset.test, dataset.levels, cfg.data.pixels, "test")[:n].to(device)
    with seeded_rng(FIGURE_SEED):
        recon = vae.reconstruct(x)
        samples = vae.sample(64)
    rows, labels = [x, recon], ["model\ninput", "recon-\nstruction"]
    if cfg.data.pixels in ("dynamic", "static"):
        rows.insert(0, unit_interval(dataset.test, dataset.levels)[:n])
        labels.insert(0, "grey\noriginal")
    paths.append(
        plot_image_rows(
            rows,
            labels,
            shape,
            figures / "reconstructions.png",
            title=f"{dataset.name}: test images (above) and E[x | z = mean of q(z|x)] (below)",
        )
    )
    paths.append(
        plot_image_grid(
            samples,
            shape,
            figures / "samples.png",
            title=f"{dataset.name}: E[x | z] for z ~ p(z)",
        )
    )
    if run.file("baseline_mixtures.pt").is_file():
        paths.append(_mixture_figure(run, vae, dataset, device))
    paths += _latent_figures(run, vae, cfg, dataset, device)
    ae = load_run_autoencoder(run, cfg, dataset, device)
    if ae is not None:
        _, interp = interpolation_study(run, vae, ae, cfg, dataset, device)
        paths.append(
            plot_interpolations(
                interp,
                shape,
                figures / "interpolation.png",
                title=f"{dataset.name}: decoding straight lines between two test images' codes "
                "(right: log p of each frame's most probable image under the VAE)",
            )
        )
    return paths


def _latent_figures(
    run: RunDirectory, vae: VAE, cfg: RunConfig, dataset: ImageDataset, device
) -> list[Path]:
    """The learned manifold (decoder means over a grid of the two most active latent
    dimensions) and the test set's posterior means coloured by class."""
    x = eval_view(dataset.test, dataset.levels, cfg.data.pixels, "test").to(device)
    activity = vae.activity(x)
    dims = tuple(activity.argsort(descending=True)[:2].tolist())
    per_axis = 15 if vae.latent_dim <= 2 else 10
    grid = vae.latent_grid_means(per_axis if vae.latent_dim > 1 else per_axis**2, dims)
    if vae.latent_dim == 1:
        where = "along its 1-D latent"
    elif vae.latent_dim == 2:
        where = "over its 2-D latent space"
    else:
        where = f"over latent dimensions {dims[0] + 1} and {dims[1] + 1} (the most active)"
    paths = [
        plot_image_grid(
            grid,
            dataset.image_shape,
            run.figures_dir / "manifold.png",
            title=f"{dataset.name}: E[x | z] {where},\nz at the quantiles of N(0, 1)",
            nrow=per_axis,
        )
    ]
    n = len(x) if vae.latent_dim <= 2 else min(len(x), TSNE_POINTS)  # t-SNE is quadratic
    points, axis = embed_2d(vae.posterior_means(x[:n]).cpu(), seed=FIGURE_SEED)
    paths.append(
        plot_latent_scatter(
            points,
            dataset.test.labels[:n],
            CLASS_NAMES.get(dataset.name, [str(c) for c in range(10)]),
            run.figures_dir / "latent_space.png",
            title=f"{dataset.name}: posterior means of {n:,} test images",
            axis_label=axis,
        )
    )
    return paths


def train_run_autoencoder(
    run: RunDirectory, cfg: RunConfig, dataset: ImageDataset, device, progress: bool = False
) -> Autoencoder:
    """The plain autoencoder with the VAE's network shapes, on the same data and schedule;
    saved as ``autoencoder.pt``."""
    kind = getattr(LIKELIHOODS.get(cfg.model.likelihood), "data_kind", "binary")
    torch.manual_seed(cfg.train.seed)
    ae = Autoencoder(
        dataset.data_dim,
        cfg.model.latent_dim,
        cfg.model.hidden,
        cfg.model.activation,
        binary=kind == "binary",
    )
    data = ImageData(dataset, cfg.data.pixels, device)
    history = train_autoencoder(
        ae, data, cfg.train.epochs, cfg.train.batch_size, cfg.train.lr, device, progress
    )
    save_checkpoint(
        run.file("autoencoder.pt"),
        {"model": ae.state_dict(), "history": history, "binary": ae.binary},
    )
    return ae


def load_run_autoencoder(run: RunDirectory, cfg: RunConfig, dataset: ImageDataset, device):
    if not run.file("autoencoder.pt").is_file():
        return None
    state = load_checkpoint(run.file("autoencoder.pt"), map_location=device)
    ae = Autoencoder(
        dataset.data_dim,
        cfg.model.latent_dim,
        cfg.model.hidden,
        cfg.model.activation,
        binary=state["binary"],
    )
    ae.load_state_dict(state["model"])
    return ae.to(device).eval()


def interpolation_study(
    run: RunDirectory,
    vae: VAE,
    ae: Autoencoder,
    cfg: RunConfig,
    dataset: ImageDataset,
    device,
    n_pairs: int = 20,
    steps: int = 9,
    num_samples: int = 200,
    judges: dict[str, Any] | None = None,
    output: str = "interpolation.json",
) -> tuple[dict[str, Any], list]:
    """Straight lines between the codes of pairs of test images ("2" to "9" where there are
    such labels), decoded by the autoencoder and by the VAE. Each frame (as its most probable
    binary image, for binary data) is scored by every judge (default: the VAE's
    importance-sampled log p(x), and the exact log p(x) of the run's best finite mixture, a
    model trained on the same data that decoded neither path). The figure uses the first
    judge. Writes ``output`` into the run directory."""
    pixels = cfg.data.pixels
    x = eval_view(dataset.test, dataset.levels, pixels, "test").to(device)
    pairs = choose_pairs(dataset.test.labels, n_pairs, seed=FIGURE_SEED)
    x_a, x_b = x[pairs[:, 0]], x[pairs[:, 1]]
    binary = pixels in ("dynamic", "static", "grey")
    if judges is None:
        judges = {"VAE": vae}
        mixture = best_mixture(run)
        if mixture is not None:
            judges[f"{type(mixture).__name__}(K={mixture.n_components})"] = mixture
    decoded = {
        "autoencoder": interpolation_paths(ae.encode, ae.decode, x_a, x_b, steps),
        "VAE": interpolation_paths(
            vae.posterior_means, lambda z: vae.decode(z).mean, x_a, x_b, steps
        ),
    }
    inner = slice(1, steps - 1)  # the endpoints are (nearly) the images themselves
    result: dict[str, Any] = {
        "pairs": n_pairs,
        "steps": steps,
        "classes": [int(dataset.test.labels[pairs[0, 0]]), int(dataset.test.labels[pairs[0, 1]])],
        "frames": "most probable binary image of each frame" if binary else "frames as decoded",
        "judges": {},
    }
    plotted = []
    for judge_name, judge in judges.items():
        scores = {
            name: score_paths(judge, frames, binary=binary, num_samples=num_samples).cpu()
            for name, frames in decoded.items()
        }
        diff = scores["VAE"][:, inner].mean(1) - scores["autoencoder"][:, inner].mean(1)
        result["judges"][judge_name] = {
            "autoencoder_mean_log_px": scores["autoencoder"][:, inner].double().mean().item(),
            "vae_mean_log_px": scores["VAE"][:, inner].double().mean().item(),
            "vae_minus_autoencoder": diff.double().mean().item(),
            "vae_minus_autoencoder_se": diff.double().std().item() / math.sqrt(len(diff)),
        }
        if not plotted:  # the figure shows the first judge's scores
            plotted = [(name, decoded[name].cpu(), scores[name]) for name in decoded]
            result["plotted_judge"] = judge_name
    run.write_json(output, result)
    return result, plotted


def best_mixture(run: RunDirectory) -> Mixture | None:
    """The best finite mixture of the run's baseline, if it has one."""
    if not run.file("baseline_mixtures.pt").is_file():
        return None
    state = load_checkpoint(run.file("baseline_mixtures.pt"))
    return next(
        Mixture.from_state_dict(m) for m in state["mixtures"] if m["n_components"] == state["best"]
    )


def vae_pixels(run: RunDirectory) -> str:
    return run.read_config().resolved().data.pixels


def _mixture_figure(run: RunDirectory, vae: VAE, dataset: ImageDataset, device) -> Path:
    state = load_checkpoint(run.file("baseline_mixtures.pt"))
    mixture = next(
        Mixture.from_state_dict(m) for m in state["mixtures"] if m["n_components"] == state["best"]
    )
    n, k = 32, mixture.n_components
    x_test = eval_view(dataset.test, dataset.levels, vae_pixels(run), "test").to(device)
    dims = tuple(vae.activity(x_test).argsort(descending=True)[:2].tolist())
    with seeded_rng(FIGURE_SEED):
        mixture_samples = mixture.sample(n, generator=torch.Generator().manual_seed(FIGURE_SEED))
        vae_samples = vae.sample(n, mean=False)
        grid = vae.latent_grid_means(8 if vae.latent_dim > 1 else 32, dims)
    grid_title = (
        f"VAE: E[x | z] on a latent grid\n(z_{dims[0] + 1}, z_{dims[1] + 1}: the most active; "
        "rest 0)"
        if len(dims) > 1
        else "VAE: E[x | z] along its 1-D latent"
    )
    order = mixture.weights.argsort(descending=True)[:64]
    name = f"{type(mixture).__name__} (K={k})"
    return plot_image_panels(
        [
            (f"{name}: samples x ~ p(x)", mixture_samples.float()),
            ("VAE: samples x ~ p(x)", vae_samples),
            (f"{name}: component means\n(largest weights first)", mixture.component_means()[order]),
            (grid_title, grid),
        ],
        dataset.image_shape,
        run.figures_dir / "gmm_vs_vae.png",
        title=f"{dataset.name}: a finite mixture against the VAE's continuous mixture",
    )


def regenerate_figures(run_dir: str | Path, device: str = "cpu") -> list[Path]:
    """Redraw a run's figures from its directory alone (no retraining)."""
    run, cfg, vae = load_vae(run_dir, device)
    dataset = load_data(cfg)
    return write_figures(run, vae, cfg, dataset, torch.device(device))


def run_main_job(
    cfg: RunConfig,
    runs_dir: str | Path = "runs",
    name: str | None = None,
    progress: bool = True,
    num_samples: int = 1000,
    baseline_components: Sequence[int] = DEFAULT_COMPONENTS,
    resume: str | Path | None = None,
) -> RunResult:
    """Train, evaluate (log p(x) with ``num_samples`` importance samples per test image),
    compare with finite mixtures of ``baseline_components`` components, and plot: everything
    ``pyro-vae run`` does. With ``resume`` (a run directory), ``cfg`` is that run's and
    training continues from its checkpoint."""
    cfg = cfg.resolved()
    device = resolve_device(cfg.train.device)
    dataset = load_data(cfg)
    check_batch_size(cfg, dataset)  # before a run directory exists
    run = RunDirectory.open(resume) if resume else RunDirectory.create(runs_dir, name)
    trainer = train(cfg, run, progress=progress, dataset=dataset, resume=resume is not None)
    vae = trainer.vae.eval()
    evaluation, estimate = evaluate(
        vae, cfg, dataset, device, num_samples=num_samples, progress=progress
    )
    save_evaluation(run, evaluation, estimate)
    baseline = compare_with_mixtures(run, vae, cfg, dataset, estimate, baseline_components)
    train_run_autoencoder(run, cfg, dataset, device, progress)
    figures = write_figures(run, vae, cfg, dataset, device)
    write_report(run.path)
    return RunResult(run, cfg, trainer.history, evaluation, figures, baseline)


def trained_run(
    cfg: RunConfig,
    runs_dir: str | Path,
    name: str,
    dataset: ImageDataset | None = None,
    progress: bool = True,
    device: str | torch.device | None = None,
    monitor_test: bool = False,
) -> tuple[RunDirectory, VAE, list[dict[str, Any]]]:
    """The run ``runs_dir/name`` for ``cfg``: reused when that directory already holds a
    finished run with the same configuration, trained afresh otherwise (for experiment scripts,
    which can then be stopped and re-run, and redraw their figures without retraining).
    Returns the run directory, the VAE (in eval mode) and the per-epoch metrics."""
    import shutil

    cfg = cfg.resolved()
    device = torch.device(device) if device is not None else resolve_device(cfg.train.device)
    path = Path(runs_dir) / name
    if (path / "config.json").is_file() and (path / "checkpoint.pt").is_file():
        run = RunDirectory(path)
        if run.read_config().resolved() == cfg:
            if int(run.load_checkpoint()["epoch"]) >= cfg.train.epochs:
                _, _, vae = load_vae(path, device)
                return run, vae, run.read_metrics()
            # the same run, unfinished: continue it where it stopped
            trainer = train(
                cfg, run, progress=progress, dataset=dataset, monitor_test=monitor_test, resume=True
            )
            return run, trainer.vae.eval(), run.read_metrics()
    shutil.rmtree(path, ignore_errors=True)  # absent, or another configuration
    run = RunDirectory.create(runs_dir, name)
    trainer = train(cfg, run, progress=progress, dataset=dataset, monitor_test=monitor_test)
    return run, trainer.vae.eval(), run.read_metrics()
