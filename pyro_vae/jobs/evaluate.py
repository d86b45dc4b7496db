"""The evaluation job (``pyro-vae evaluate``): log p(x) of a trained run on a data split, and
the BDMC sandwich on simulated images, each result added to the run directory under its own key
(the estimators themselves are in :mod:`pyro_vae.app.evaluate`)."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

from ..app.evaluate import (
    Estimator,
    Evaluated,
    check_ais_fits,
    evaluate,
    evaluate_gaps,
    run_bdmc,
    save_bdmc,
    save_evaluation,
)
from ..app.evaluations import save_estimate
from ..app.gaps import draw_gaps, figure_name
from ..app.provenance import record as record_provenance
from ..app.run_data import example_word, load_run_data
from ..app.runs import RunDirectory, load_vae
from ..errors import ConfigError
from ..infer.distributed import SINGLE, ProcessGroup, device_for
from ..infer.memory import check_memory, estimate_memory
from ..infer.training import resolve_device
from ..store.evaluation import GapsEvaluation
from .train import completed_epochs


def evaluate_run(
    run_dir: str | Path,
    estimator: Estimator | None = None,
    split: str = "test",
    device: str = "auto",
    progress: bool = True,
    bdmc_images: int = 0,
    sandwich: Estimator | None = None,
    group: ProcessGroup = SINGLE,
    data_dir: str | Path | None = None,
    download: bool = True,
) -> Evaluated:
    """``pyro-vae evaluate``: log p(x) of a trained run on ``split`` by ``estimator`` (default:
    importance sampling, K = 5000; none when only a sandwich is asked for) and the BDMC
    sandwich on ``bdmc_images`` simulated images by ``sandwich`` (AIS settings), each added to
    the run directory under its key, holding the run's lock from loading the model to writing
    the result. Returns what ran (each record's ``key`` is where it was kept)

    With several processes (``group``, under torchrun) the estimate's images are shared among
    them; process 0 holds the lock, writes, and computes the BDMC sandwich alone."""
    dev = resolve_device(device_for(device, group))
    if estimator is None and not bdmc_images:
        estimator = Estimator()
    if bdmc_images:
        sandwich = sandwich or Estimator(method="ais")
        if bdmc_images < 1:
            raise ConfigError(f"--bdmc {bdmc_images}: give a positive number of images")
    out = Evaluated()
    with RunDirectory.open(run_dir).writing() if group.is_main else nullcontext():
        run, cfg, vae = load_vae(run_dir, dev)
        for est in (estimator, sandwich if bdmc_images else None):
            if est is not None:
                est.check(vae)  # both refused before any long work starts
        dataset = load_run_data(cfg, data_dir, download, run_dir)  # the user's, not the config's
        out.noun = example_word(cfg.data)
        if estimator is not None and estimator.method in ("is", "gaps"):  # K weights per image
            need = estimate_memory(
                vae,
                dataset.data_dim,
                cfg.model.latent_dim,
                batch_size=1,
                num_samples=estimator.num_samples,
                num_test=len(dataset.split(split)),
            )
            check_memory(need, dev, what=f"--num-samples {estimator.num_samples}")
        as_ais = (
            replace(estimator, method="ais") if estimator and estimator.method == "gaps" else None
        )
        check_ais_fits(vae, cfg, dataset, dev, as_ais or estimator, split, bdmc_images, sandwich)
        if estimator is not None and estimator.method == "gaps":
            out.gaps = _gaps(run, cfg, vae, dataset, dev, estimator, split, progress, group)
        elif estimator is not None:
            summary, estimate = evaluate(
                vae,
                cfg,
                dataset,
                dev,
                split=split,
                progress=progress and group.is_main,
                estimator=estimator,
                group=group,
            )
            if group.is_main:
                save_evaluation(run, summary, estimate)
            out.evaluation = summary
        if bdmc_images and sandwich is not None and group.is_main:
            summary, result = run_bdmc(vae, cfg, dataset, dev, bdmc_images, sandwich, progress)
            save_bdmc(run, summary, result)
            out.bdmc = summary
        if group.is_main:
            record_provenance(run, "evaluate", str(dev), completed_epochs(run))
    return out


def _gaps(run, cfg, vae, dataset, dev, estimator, split, progress, group) -> GapsEvaluation:
    """``evaluate --gaps``: computed, kept under its key, its figure drawn (one process)."""
    if group.active:
        raise ConfigError("--gaps runs in one process (not under torchrun)")
    summary, points = evaluate_gaps(vae, cfg, dataset, dev, estimator, split, progress)
    key = save_estimate(run, summary, points.to_dict(), split)
    if split == "test":  # the report's figure
        noun = example_word(cfg.data)
        title = f"{run.path.name}: inference gaps per test {noun} ({key})"
        draw_gaps(points, run.file(figure_name(key)), title, noun)
    return summary
