"""``pyro-vae``: the command line. Argument parsing and printing only; the work is elsewhere.

Exit status: 0 on success, 2 for invalid arguments or configuration, 1 for other errors
(missing data, corrupt checkpoints, divergence), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .config import DEFAULT_EPOCHS, DataConfig, ModelConfig, RunConfig, TrainConfig
from .errors import ConfigError, PyroVAEError, TrainingInterrupted
from .objectives import objective_name


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def _add_training_options(p: argparse.ArgumentParser) -> None:
    from .datasets import DATASETS
    from .guides import FLOW_TYPES, GUIDES
    from .likelihoods import LIKELIHOODS
    from .nets import ACTIVATIONS
    from .objectives import ELBOS
    from .pixels import PIXEL_SCHEMES
    from .priors import PRIORS

    d, m, t = DataConfig(), ModelConfig(), TrainConfig()
    data = p.add_argument_group("data")
    data.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default=d.dataset,
        help="named data set (default: %(default)s, embedded, no network)",
    )
    data.add_argument(
        "--data-dir",
        default=d.data_dir,
        metavar="DIR",
        help="directory holding MNIST/Fashion-MNIST IDX files (.gz or not)",
    )
    data.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="never try to download a missing data set",
    )
    data.add_argument(
        "--pixels",
        choices=PIXEL_SCHEMES,
        default=d.pixels,
        help="dynamic: re-binarize every epoch; static: one fixed binarization; "
        "grey: grey levels in [0,1]; dequantized: (level+u)/levels "
        "(default: dynamic for --likelihood bernoulli, else dequantized)",
    )

    model = p.add_argument_group("model")
    model.add_argument(
        "--latent-dim",
        type=positive_int,
        default=m.latent_dim,
        metavar="K",
        help="dimension of z (default: %(default)s)",
    )
    model.add_argument(
        "--hidden",
        type=positive_int,
        nargs="+",
        default=m.hidden,
        metavar="H",
        help="hidden layer widths of the encoder; the decoder mirrors them (default: %(default)s)",
    )
    model.add_argument(
        "--activation",
        choices=sorted(ACTIVATIONS),
        default=m.activation,
        help="(default: %(default)s)",
    )
    model.add_argument(
        "--prior",
        choices=sorted(PRIORS),
        default=m.prior,
        help="p(z): normal N(0,I), learned diagonal Gaussian, mog (mixture of "
        "Gaussians), vamp (VampPrior) (default: %(default)s)",
    )
    model.add_argument(
        "--guide",
        choices=sorted(GUIDES),
        default=m.guide,
        help="q(z|x): diagonal or full-covariance Gaussian, or a normalizing "
        "flow (default: %(default)s)",
    )
    model.add_argument(
        "--likelihood",
        choices=sorted(LIKELIHOODS),
        default=m.likelihood,
        help="p(x|z): bernoulli (binary pixels), gaussian (fixed --sigma), "
        "gaussian-learned (sigma(z) per pixel) (default: %(default)s)",
    )
    model.add_argument(
        "--components",
        type=positive_int,
        default=m.components,
        metavar="K",
        help="components of --prior mog (default: %(default)s)",
    )
    model.add_argument(
        "--pseudo-inputs",
        type=positive_int,
        default=m.pseudo_inputs,
        metavar="K",
        help="pseudo-inputs of --prior vamp (default: %(default)s)",
    )
    model.add_argument(
        "--flows",
        type=positive_int,
        default=m.flows,
        metavar="T",
        help="transforms of --guide flow (default: %(default)s)",
    )
    model.add_argument(
        "--flow-type",
        choices=sorted(FLOW_TYPES),
        default=m.flow_type,
        help="inverse autoregressive (iaf) or planar flows (default: %(default)s)",
    )
    model.add_argument(
        "--sigma",
        type=positive_float,
        default=m.sigma,
        help="pixel noise of --likelihood gaussian (default: %(default)s)",
    )
    model.add_argument(
        "--min-sigma",
        type=positive_float,
        default=m.min_sigma,
        help="lower bound of the scale of --likelihood gaussian-learned (default: %(default)s)",
    )

    train = p.add_argument_group("training")
    defaults = ", ".join(f"{k} {v}" for k, v in DEFAULT_EPOCHS.items())
    train.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help=f"passes over the training set (default: {defaults})",
    )
    train.add_argument(
        "--batch-size",
        type=positive_int,
        default=t.batch_size,
        help="minibatch size (default: %(default)s)",
    )
    train.add_argument(
        "--lr", type=positive_float, default=t.lr, help="Adam learning rate (default: %(default)s)"
    )
    train.add_argument("--seed", type=int, default=t.seed, help="random seed (default: 0)")
    train.add_argument(
        "--device",
        default=t.device,
        help="auto (CUDA when present), cpu, cuda or cuda:N (default: auto)",
    )
    train.add_argument(
        "--elbo",
        choices=sorted(ELBOS),
        default=t.elbo,
        help="training objective: trace (Trace_ELBO), meanfield (analytic KL), "
        "iwae (importance-weighted bound) (default: %(default)s)",
    )
    train.add_argument(
        "--particles",
        type=positive_int,
        default=t.particles,
        metavar="K",
        help="guide samples per example in the training objective; the K of "
        "--elbo iwae (default: 1)",
    )
    train.add_argument(
        "--beta",
        type=positive_float,
        default=t.beta,
        help="weight of the KL term (beta-VAE) (default: %(default)s)",
    )
    train.add_argument(
        "--kl-warmup",
        type=nonnegative_int,
        default=t.kl_warmup,
        metavar="E",
        help="epochs over which the KL weight rises linearly from beta/E to "
        "beta (default: 0, no warm-up)",
    )
    train.add_argument(
        "--jit",
        action="store_true",
        help="JIT-compile the ELBO (torch.jit.trace; less Python overhead per step)",
    )
    train.add_argument(
        "--eval-particles",
        type=positive_int,
        default=t.eval_particles,
        help="guide samples per example for the validation ELBO (default: 10)",
    )

    out = p.add_argument_group("output")
    out.add_argument("--runs-dir", default="runs", help="parent of run directories")
    out.add_argument("--name", default=None, help="run directory name (default: a timestamp)")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    out.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its last completed epoch (its config.json "
        "decides everything; --epochs may raise the target)",
    )


_OPTIONS = {
    "data": ("dataset", "data_dir", "pixels", "download"),
    "model": (
        "latent_dim",
        "hidden",
        "activation",
        "prior",
        "guide",
        "likelihood",
        "components",
        "pseudo_inputs",
        "flows",
        "flow_type",
        "sigma",
        "min_sigma",
    ),
    "train": (
        "epochs",
        "batch_size",
        "lr",
        "seed",
        "device",
        "elbo",
        "particles",
        "jit",
        "eval_particles",
        "beta",
        "kl_warmup",
    ),
}


def _config_or_resume(args: argparse.Namespace, parser: argparse.ArgumentParser) -> RunConfig:
    """The run's configuration: from the options, or, with ``--resume``, from the run
    directory (then no other configuration option may be given)."""
    if args.resume is None:
        return config_from_args(args)
    from .pipeline import resume_config

    given = [
        key
        for keys in _OPTIONS.values()
        for key in keys
        if key != "epochs" and getattr(args, key) != parser.get_default(key)
    ]
    if given:
        names = ", ".join("--" + key.replace("_", "-") for key in given)
        raise ConfigError(
            f"--resume takes the configuration from {args.resume}/config.json; drop {names} "
            "(only --epochs may raise the target)"
        )
    return resume_config(args.resume, args.epochs)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The options of ``run`` / ``train`` as a :class:`RunConfig` (same names, by section)."""
    values = {section: {k: getattr(args, k) for k in keys} for section, keys in _OPTIONS.items()}
    values["model"]["hidden"] = list(values["model"]["hidden"])
    return RunConfig(
        data=DataConfig(**values["data"]),
        model=ModelConfig(**values["model"]),
        train=TrainConfig(**values["train"]),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyro-vae",
        description="Variational autoencoders as Pyro programs: train by SVI, evaluate, plot.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "run",
        help="the main job: train, evaluate on the test set, draw figures",
        description="Train a VAE, estimate its test log p(x) by importance sampling and draw "
        "its figures, all into a new run directory.",
    )
    _add_training_options(p)
    p.set_defaults(subparser=p)
    p.add_argument(
        "--num-samples",
        type=positive_int,
        default=1000,
        metavar="K",
        help="importance samples per test image for log p(x) (default: %(default)s; the "
        "literature's K=5000: pyro-vae evaluate RUN_DIR)",
    )
    p.add_argument(
        "--baseline-components",
        type=positive_int,
        nargs="*",
        default=[1, 10, 50],
        metavar="K",
        help="components of the finite-mixture baselines fitted to the same data (Bernoulli "
        "or Gaussian, matching the likelihood); none to skip (default: 1 10 50)",
    )
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "train",
        help="train only (config, metrics, checkpoint)",
        description="Train a VAE into a new run directory, without evaluation or figures.",
    )
    _add_training_options(p)
    p.set_defaults(func=_cmd_train, subparser=p)

    p = sub.add_parser(
        "evaluate",
        help="importance-sampled log p(x) of a trained run",
        description="Estimate log p(x) of a trained run on a data split by importance sampling "
        "with its guide as proposal (Burda et al. 2015): standard errors, the ELBO from the "
        "same draws, effective sample sizes and Pareto k-hat. Writes evaluation.json and "
        "evaluation_points.pt (evaluation_<split>.* for another split) into the run directory.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument(
        "--num-samples",
        type=positive_int,
        default=5000,
        metavar="K",
        help="importance samples per image (default: %(default)s)",
    )
    p.add_argument("--split", choices=["test", "val", "train"], default="test")
    p.add_argument("--seed", type=int, default=0, help="seed of the importance samples")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "report",
        help="write report.md and report.html for a run (figures redrawn first)",
        description="Redraw a run's figures from its directory and write report.md and a "
        "self-contained report.html: configuration, training curves, log p(x) with its error "
        "and diagnostics, the finite-mixture comparison and every figure, each with a sentence "
        "that says what it shows.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-figures", action="store_true", help="keep the figures as they are")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "figures",
        help="redraw a run's figures from its directory",
        description="Redraw the figures of a trained run without retraining.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_figures)

    p = sub.add_parser(
        "datasets",
        help="list the named data sets and where they are found",
        description="List the named data sets and where each would be loaded "
        "from, without downloading anything.",
    )
    p.add_argument("--data-dir", default=None, metavar="DIR")
    p.set_defaults(func=_cmd_datasets)
    return parser


# ---------------------------------------------------------------------- commands


def _print_files(result_paths: Sequence[Path], root: Path) -> None:
    for path in result_paths:
        print(f"  {path.relative_to(root)}")


def _se(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "n/a"


def _print_evaluation(ev: dict) -> None:
    k, n = ev["num_samples"], ev["num_examples"]
    mc = ev["log_px_mc_se"]
    mc_text = f"; Monte Carlo error {mc:.3f}" if mc is not None else ""
    print(
        f"  {ev['split']} log p(x)  {ev['log_px']:9.3f} ± {_se(ev['log_px_se'])}  "
        f"(importance sampling, K={k}{mc_text})"
    )
    print(
        f"  {ev['split']} ELBO      {ev['elbo']:9.3f} ± {_se(ev['elbo_se'])}  "
        f"(same draws; log p(x) - ELBO = {ev['gap']:.3f})"
    )
    print(
        f"  {ev['bits_per_dim']:.4f} bits/dim; effective sample size median "
        f"{ev['ess_median']:.0f} of {k}"
    )
    if ev["khat_above_0.7"] is None:
        print(f"  (Pareto k-hat needs K >= 50; got K={k})")
    elif ev["khat_above_0.7"]:
        print(
            f"  WARNING: Pareto k-hat > 0.7 for {ev['khat_above_0.7']} of {n} images (max "
            f"{ev['khat_max']:.2f}): their importance weights are too heavy-tailed\n"
            "  for those estimates to be trusted. Use a larger K, or a guide closer to the "
            "posterior."
        )
    else:
        print(f"  Pareto k-hat <= 0.7 for all {n} images (max {ev['khat_max']:.2f}): reliable")


def _cmd_run(args: argparse.Namespace) -> int:
    from .pipeline import run_main_job

    cfg = _config_or_resume(args, args.subparser)
    result = run_main_job(
        cfg,
        args.runs_dir,
        args.name,
        progress=not args.quiet,
        num_samples=args.num_samples,
        baseline_components=args.baseline_components,
        resume=args.resume,
    )
    run, last = result.run, result.history[-1]
    best = max(result.history, key=lambda r: r.val_elbo)
    print(f"run directory: {run.path}")
    files = [run.config_path, run.metrics_path, run.checkpoint_path, run.file("evaluation.json")]
    if result.baseline:
        files.append(run.file("baseline.json"))
    _print_files(files + result.figures, run.path)
    print(
        f"{result.cfg.data.dataset}, {last.epoch} epochs in {last.wall_seconds:.1f} s "
        "(nats per image, ± standard error over images; higher is better):"
    )
    t = result.cfg.train
    name = objective_name(t.elbo, t.particles, t.beta, t.kl_warmup)
    print(f"  train          {last.train_objective:9.3f}  ({name}, minibatch average)")
    print(
        f"  val ELBO       {last.val_elbo:9.3f}  (best {best.val_elbo:.3f} at epoch {best.epoch})"
    )
    _print_evaluation(result.evaluation)
    if result.baseline:
        _print_baseline(result.baseline)
    print(f"report: {run.file('report.html')} (and report.md)")
    return 0


def _print_baseline(baseline: dict) -> None:
    print("  finite-mixture baselines (exact log p(x), same test images):")
    for row in baseline["mixtures"]:
        print(
            f"    {row['model']:24s} {row['log_px']:9.3f} ± {row['log_px_se']:.3f}  "
            f"({row['bits_per_dim']:.4f} bits/dim, {row['num_parameters']:,} parameters)"
        )
    vae, diff = baseline["vae"], baseline["vae_minus_best_mixture"]
    print(
        f"    {'VAE':24s} {vae['log_px']:9.3f} ± {vae['log_px_se']:.3f}  "
        f"({vae['bits_per_dim']:.4f} bits/dim, {vae['generative_parameters']:,} parameters of "
        "p(x))"
    )
    print(
        f"  VAE - {baseline['best_mixture']} (the mixture with the best validation log p(x)): "
        f"{diff['mean']:+.3f} ± {diff['se']:.3f} nats per image, paired over the test images"
    )


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .pipeline import evaluate_run

    ev = evaluate_run(
        args.run_dir, args.num_samples, args.split, args.seed, args.device, not args.quiet
    )
    print(
        f"{args.run_dir}: {ev['dataset']}, {ev['num_examples']} {args.split} images, "
        f"{ev['seconds']:.1f} s (nats per image):"
    )
    _print_evaluation(ev)
    name = "evaluation.json" if args.split == "test" else f"evaluation_{args.split}.json"
    print(f"written: {Path(args.run_dir) / name}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .pipeline import load_data, train
    from .runs import RunDirectory
    from .training import check_batch_size

    cfg = _config_or_resume(args, args.subparser).resolved()
    dataset = load_data(cfg)
    check_batch_size(cfg, dataset)
    if args.resume:
        run = RunDirectory.open(args.resume)
    else:
        run = RunDirectory.create(args.runs_dir, args.name)
    trainer = train(cfg, run, progress=not args.quiet, dataset=dataset, resume=bool(args.resume))
    last = trainer.history[-1]
    print(f"run directory: {run.path}")
    print(
        f"epoch {last.epoch}: train objective {last.train_objective:.3f}, validation ELBO "
        f"{last.val_elbo:.3f} nats per example"
    )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .pipeline import regenerate_figures
    from .report import write_report

    if not args.no_figures:
        regenerate_figures(args.run_dir, args.device)
    md, page = write_report(args.run_dir)
    print(f"report: {page}\n        {md}")
    return 0


def _cmd_figures(args: argparse.Namespace) -> int:
    from .pipeline import regenerate_figures

    paths = regenerate_figures(args.run_dir, args.device)
    print(f"figures of {args.run_dir}:")
    _print_files(paths, Path(args.run_dir))
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from .datasets import DATASETS, default_data_dir, locate_dataset

    for name in sorted(DATASETS):
        where = locate_dataset(name, args.data_dir)
        print(f"{name:14s} {where or 'not found locally (downloaded on first use if online)'}")
    print(f"download/cache directory: {default_data_dir()} (set PYRO_VAE_DATA to change)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM (`kill`, a batch scheduler's time limit) stops a run as Ctrl-C does: the last
    # completed epoch is kept and the message says how to resume; exit status 128 + signal.
    terminated: list[int] = []
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: object) -> None:
        terminated.append(signum)
        raise KeyboardInterrupt

    if in_main_thread:
        signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return args.func(args)
    except ConfigError as exc:
        parser.exit(2, f"pyro-vae: error: {exc}\n")
    except TrainingInterrupted as exc:
        print(f"pyro-vae: {exc}", file=sys.stderr)
        return 128 + (terminated[0] if terminated else signal.SIGINT)
    except PyroVAEError as exc:
        print(f"pyro-vae: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pyro-vae: interrupted", file=sys.stderr)
        return 128 + (terminated[0] if terminated else signal.SIGINT)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
