"""The commands of ``pyro-vae``, one function each: read the parsed options, call the job
(:mod:`pyro_vae.jobs`) or the reader (:mod:`pyro_vae.app`) that does the work, print what it
made (:mod:`pyro_vae.app.console`). Each imports its job when it runs (the one place in the
package that imports inside functions), so that ``--help`` loads no torch."""

from __future__ import annotations

import argparse
import importlib.util
import os
import stat
import sys
from pathlib import Path

from ..app.config import RunConfig
from ..app.console import print_files
from ..app.escape import terminal_text
from ..app.options import config_from_args, refuse_options_with_resume
from ..errors import ConfigError


def _config_or_resume(args: argparse.Namespace, parser: argparse.ArgumentParser) -> RunConfig:
    """The run's configuration: from the options, or, with ``--resume``, from the run
    directory (then no other configuration option may be given)."""
    from ..jobs.train import resume_config

    if args.resume is None:
        return config_from_args(args)
    refuse_options_with_resume(args, parser)
    return resume_config(args.resume, args.epochs)


def _tensorboard(args: argparse.Namespace) -> bool:
    """Whether to log to TensorBoard: ``--tensorboard``, or a resume of a run that logged there
    before (a real ``RUN/tensorboard`` directory), which goes on logging, said on stderr."""
    if args.tensorboard or args.resume is None:
        return bool(args.tensorboard)
    path = Path(args.resume) / "tensorboard"
    try:
        logged_before = stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False
    if not logged_before:
        return False
    shown = terminal_text(str(path))
    if importlib.util.find_spec("tensorboard") is None:
        print(
            f"note: this run logged to {shown} before; the tensorboard package is not installed, "
            "so the epochs of this resume are not logged there",
            file=sys.stderr,
        )
        return False
    print(f"TensorBoard: the resumed epochs are logged to {shown}, as before", file=sys.stderr)
    return True


def cmd_run(args: argparse.Namespace) -> int:
    from ..app.console import print_baseline, print_evaluation
    from ..app.part_import import remember_parts
    from ..app.run_data import example_word
    from ..infer.objectives import objective_name
    from ..jobs.run import run_main_job

    cfg = _config_or_resume(args, args.subparser)
    result = run_main_job(
        cfg,
        args.runs_dir,
        args.name,
        progress=not args.quiet,
        num_samples=args.num_samples,
        baseline_components=args.baseline_components,
        resume=args.resume,
        tensorboard=_tensorboard(args),
        on_checked=remember_parts,
        autoencoder_epochs=args.autoencoder_epochs,
    )
    run, last = result.run, result.history[-1]
    best = max(result.history, key=lambda r: r.val_elbo)
    print(f"run directory: {terminal_text(str(run.path))}")
    files = [run.config_path, run.metrics_path, run.checkpoint_path, run.file("evaluation.json")]
    if result.baseline:
        files.append(run.file("baseline.json"))
    print_files(files + result.figures, run.path)
    noun = example_word(result.cfg.data)
    print(
        f"{result.cfg.data.dataset}, {last.epoch} epochs in {last.wall_seconds:.1f} s "
        f"(nats per {noun}, ± standard error over {noun}s; higher is better):"
    )
    t = result.cfg.train
    name = objective_name(t.elbo, t.particles, t.beta, t.kl_warmup)
    print(f"  train          {last.train_objective:9.3f}  ({name}, minibatch average)")
    print(
        f"  val ELBO       {last.val_elbo:9.3f}  (best {best.val_elbo:.3f} at epoch {best.epoch})"
    )
    print_evaluation(result.evaluation, noun)
    if result.baseline:
        print_baseline(result.baseline, noun)
    print(f"report: {terminal_text(str(run.file('report.html')))} (and report.md)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..app.console import print_bdmc, print_evaluation
    from ..app.evaluate import Estimator
    from ..app.evaluations import summary_name
    from ..infer import distributed
    from ..jobs.evaluate import evaluate_run

    group = distributed.init_from_environment(args.device)
    if args.seed < 0:
        raise ConfigError(f"--seed {args.seed}: give an integer >= 0")
    settings = dict(
        num_samples=args.num_samples,
        num_steps=args.steps,
        num_chains=args.chains,
        num_leapfrog=args.leapfrog,
        start=args.ais_start,
        seed=args.seed,
    )
    method = _evaluation_method(args)
    refine_steps = args.refine if args.refine is not None else args.refine_steps
    estimator = (
        Estimator(method=method, images=args.images, refine_steps=refine_steps, **settings)
        if method
        else None
    )
    sandwich = Estimator(method="ais", **settings) if args.bdmc else None
    out = evaluate_run(
        args.run_dir,
        estimator,
        args.split,
        args.device,
        not args.quiet,
        args.bdmc,
        sandwich,
        group=group,
        data_dir=args.data_dir,
        download=args.download,
    )
    if not group.is_main:
        return 0
    written = Path(args.run_dir) / summary_name(args.split if estimator else "test")
    if out.evaluation is not None:
        ev = out.evaluation
        print(
            f"{terminal_text(str(args.run_dir))}: {terminal_text(str(ev.dataset))}, "
            f"{ev.num_examples} {args.split} {out.noun}s, "
            f"{ev.seconds:.1f} s (nats per {out.noun}):"
        )
        print_evaluation(ev, out.noun)
    if out.gaps is not None:
        print_gaps(args.run_dir, out.gaps, out.noun)
    if out.bdmc is not None:
        print_bdmc(out.bdmc, out.noun)
    print(f"written: {terminal_text(str(written))} ({', '.join(out.keys())})")
    return 0


def _evaluation_method(args: argparse.Namespace) -> str | None:
    """The estimator ``evaluate`` runs on the split: ``--gaps``, ``--method`` or, by default,
    importance sampling (none when only ``--bdmc`` is given)."""
    if args.gaps and (args.method or args.refine is not None):
        raise ConfigError("--gaps runs its own estimators: leave out --method and --refine")
    if args.refine_steps is not None and not args.gaps:
        raise ConfigError("--refine-steps is --gaps's budget; for IS give --refine STEPS")
    if args.refine is not None and args.method == "ais":
        raise ConfigError("--refine refines the proposal of importance sampling, not of AIS")
    if args.gaps:
        return "gaps"
    return args.method or (None if args.bdmc and args.refine is None else "is")


def print_gaps(run_dir: str, g, noun: str = "image") -> None:
    """What ``evaluate --gaps`` found, in a few lines."""
    print(
        f"{terminal_text(str(run_dir))}: inference gaps on {g.num_examples} {g.split} {noun}s, "
        f"{g.seconds:.1f} s (nats per {noun}, ± standard error over {noun}s):"
    )
    se = "n/a" if g.log_px_se is None else f"{g.log_px_se:.3f}"
    print(f"  log p(x) (AIS)      {g.log_px:9.3f} ± {se}")
    print(f"  ELBO* (refined q)   {g.refined_elbo:9.3f}  ({g.refine_steps} steps per {noun})")
    print(f"  ELBO (encoder's q)  {g.elbo:9.3f}")
    for name, value, err in (
        ("approximation gap", g.approximation_gap, g.approximation_gap_se),
        ("amortization gap ", g.amortization_gap, g.amortization_gap_se),
    ):
        print(f"  {name}   {value:9.3f} ± {'n/a' if err is None else f'{err:.3f}'}")
    if g.ais_unreliable:
        print(f"  AIS flags {g.ais_unreliable} {noun}s unreliable: more --steps or --chains")


def cmd_list(args: argparse.Namespace) -> int:
    from ..app.overview import HEADER, list_runs

    lines = list_runs(args.runs_dir)
    if not lines:
        print(f"no runs in {args.runs_dir}")
        return 0
    print(HEADER)
    for line in lines:
        print(line.text())
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ..app.gaps import compare_gaps
    from ..app.overview import compare_runs

    comparison = compare_runs(args.run_dirs, args.estimate)
    print(comparison.text())
    names = [terminal_text(Path(p).name) for p in args.run_dirs]
    gaps = compare_gaps(args.run_dirs, names, comparison.noun)
    if gaps:
        print("\n".join(gaps))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ..app.part_import import remember_parts
    from ..jobs.prepare import prepare
    from ..jobs.train import completed_epochs, train

    cfg = _config_or_resume(args, args.subparser)
    tensorboard = _tensorboard(args)
    plan = prepare(  # every check before a run exists; process 0 creates it
        cfg,
        args.runs_dir,
        args.name,
        resume=args.resume,
        tensorboard=tensorboard,
        on_checked=remember_parts,  # the checks passed: the user's parts are the user's choice
        join_group=True,
    )
    run, group = plan.run, plan.group
    assert run is not None
    if args.resume:
        done = completed_epochs(run)
        if done >= plan.cfg.train.epochs:
            if group.is_main:
                print(
                    f"{run.path} is complete: it has trained {done} of {plan.cfg.train.epochs} "
                    "epochs; nothing to do (give --epochs N to train further)."
                )
            return 0
    trainer = train(plan, progress=not args.quiet, tensorboard=tensorboard)
    if not group.is_main:
        return 0
    last = trainer.history[-1]
    print(f"run directory: {terminal_text(str(run.path))}")
    print(
        f"epoch {last.epoch}: train objective {last.train_objective:.3f}, validation ELBO "
        f"{last.val_elbo:.3f} nats per example"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..app.figures import regenerate_figures
    from ..app.report import write_report
    from ..app.runs import RunDirectory, load_vae
    from ..infer.training import resolve_device

    device = "cpu" if args.no_figures else resolve_device(args.device)  # before any work
    with RunDirectory.open(args.run_dir).writing():  # figures and report from one model
        loaded = load_vae(args.run_dir, device)
        if not args.no_figures:
            regenerate_figures(
                args.run_dir, device, not args.quiet, args.data_dir, args.download, loaded
            )
        md, page = write_report(args.run_dir, loaded)
    print(f"report: {terminal_text(str(page))}\n        {terminal_text(str(md))}")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from ..app.figures import regenerate_figures
    from ..infer.training import resolve_device

    device = resolve_device(args.device)  # absent CUDA said as such, before any work
    paths = regenerate_figures(args.run_dir, device, not args.quiet, args.data_dir, args.download)
    print(f"figures of {terminal_text(str(args.run_dir))}:")
    print_files(paths, Path(args.run_dir))
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from ..data.datasets import DATASETS, default_data_dir, locate_dataset

    for name in sorted(DATASETS):
        where = locate_dataset(name, args.data_dir)
        print(f"{name:14s} {where or 'not found locally (downloaded on first use if online)'}")
    print(f"download/cache directory: {default_data_dir()} (set PYRO_VAE_DATA to change)")
    return 0
