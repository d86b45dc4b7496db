"""``pyro-vae``: the command line. Argument parsing and dispatch; the work is in the job modules
(:mod:`.train`, :mod:`.evaluate`, :mod:`.figures`, :mod:`.main_job`, :mod:`.report`) and the
printing in :mod:`.console`. Each command imports its job module when it runs (the one place in
the package that imports inside functions), so that ``--help``, ``--version`` and usage errors
answer without loading torch, Pyro or matplotlib.

Exit status: 0 on success, 2 for invalid arguments or configuration, 1 for other errors
(missing data, corrupt checkpoints, divergence, a run directory another pyro-vae process is
writing, a file that cannot be written), 128 + signal when interrupted.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..errors import ConfigError, PyroVAEError, TrainingInterrupted, first_line
from .config import RunConfig
from .console import print_files, tolerate_encoding
from .escape import terminal_text
from .interrupts import forced_exit
from .options import (
    add_config_options,
    add_output_options,
    config_from_args,
    device_name,
    parse_with_preset,
    path_text,
    positive_int,
    refuse_options_with_resume,
    seed_int,
)
from .preflight import RUN_COMMANDS, require_run_dir, require_runs_dir, run_labels
from .trust import add_trust_option, vouching
from .usage import UsageParser


def _config_or_resume(args: argparse.Namespace, parser: argparse.ArgumentParser) -> RunConfig:
    """The run's configuration: from the options, or, with ``--resume``, from the run
    directory (then no other configuration option may be given)."""
    from .train import resume_config

    if args.resume is None:
        return config_from_args(args)
    refuse_options_with_resume(args, parser)
    return resume_config(args.resume, args.epochs)


def _add_data_source_options(p: argparse.ArgumentParser) -> None:
    """Where a command on an existing run finds its data set: the user's choice, never the
    run's config.json (which may be anyone's; its data_dir is only read from)."""
    p.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="directory holding the MNIST/Fashion-MNIST IDX files, and where a missing data "
        "set is downloaded (default: the download cache, $PYRO_VAE_DATA or "
        "~/.cache/pyro-vae; the run's own data_dir is only read from)",
    )
    p.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="never try to download a missing data set",
    )


def _remember_parts(cfg: RunConfig) -> None:
    """Vouch for the modules of the parts the command line names ``module:Class`` (imported and
    checked first), in the user's allow-list, so that their runs resume and evaluate later
    (see :mod:`.trust`); an allow-list that cannot be written is a note, not an error."""
    from .registry import command_line_modules
    from .trust import allow_list_path, remember

    modules = command_line_modules(cfg)
    try:
        path = remember(modules)
    except OSError as exc:
        print(
            f"pyro-vae: note: could not record {', '.join(modules)} in {allow_list_path()} "
            f"({exc.strerror or first_line(exc)}); give --trust {modules[0]} to commands that "
            "read this run",
            file=sys.stderr,
        )
        return
    if path is not None:
        print(
            f"pyro-vae: trusting {', '.join(modules)} for parts named in runs' config.json "
            f"from now on (recorded in {path})",
            file=sys.stderr,
        )


TRUSTING_COMMANDS = ("run", "train", "evaluate", "figures", "report")
"""The commands that read a run's configuration (``run`` and ``train`` with ``--resume``): they
take ``--trust MODULE``."""


def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(
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
    add_config_options(p)
    add_output_options(p)
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
    add_config_options(p)
    add_output_options(p)
    p.set_defaults(func=_cmd_train, subparser=p)

    p = sub.add_parser(
        "evaluate",
        help="log p(x) of a trained run: importance sampling, AIS, the BDMC sandwich",
        description="Estimate log p(x) of a trained run on a data split. --method is "
        "(default): importance sampling with the guide as proposal (Burda et al. 2015), with "
        "standard errors, the ELBO from the same draws, effective sample sizes and Pareto "
        "k-hat. --method ais: annealed importance sampling with HMC transitions (Neal 2001; "
        "Wu et al. 2017), tighter where k-hat says IS cannot be trusted. --bdmc N: the "
        "bidirectional Monte Carlo sandwich (Grosse et al. 2015) on N images simulated from "
        "the model, which bounds log p(x) from both sides and says how far off AIS and IS "
        "are. Each result is added to evaluation.json under its own key (is-K5000, "
        "ais-T500-C8-L5, bdmc-N100-T500-C8-L5), keeping the others.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument(
        "--method",
        choices=["is", "ais"],
        default=None,
        help="estimator for the split (default: is; none when only --bdmc is given)",
    )
    p.add_argument(
        "--num-samples",
        type=positive_int,
        default=5000,
        metavar="K",
        help="importance samples per image, for IS and for the IS row of --bdmc "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        default=100,
        metavar="T",
        help="AIS: intermediate distributions on the sigmoid schedule (default: %(default)s, "
        "where BDMC puts a Fashion-MNIST VAE within 0.1 nat; see the README)",
    )
    p.add_argument(
        "--chains",
        type=positive_int,
        default=8,
        metavar="C",
        help="AIS: independent chains per image (default: %(default)s)",
    )
    p.add_argument(
        "--leapfrog",
        type=positive_int,
        default=5,
        metavar="L",
        help="AIS: leapfrog steps per HMC transition (default: %(default)s)",
    )
    p.add_argument(
        "--ais-start",
        choices=["guide", "prior"],
        default="guide",
        help="AIS: anneal from the guide q(z|x) (default) or from the prior p(z)",
    )
    p.add_argument(
        "--bdmc",
        type=positive_int,
        default=0,
        metavar="N",
        help="also run the BDMC sandwich on N images simulated from the model",
    )
    p.add_argument("--split", choices=["test", "val", "train"], default="test")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the estimators' draws")
    p.add_argument("--device", type=device_name, default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_source_options(p)
    p.set_defaults(func=_cmd_evaluate, subparser=p)

    p = sub.add_parser(
        "list",
        help="one line per run: data, parts, epochs, best validation ELBO, log p(x), status",
        description="List the runs in a directory of runs: data set, prior / guide / "
        "likelihood, epochs done of those asked for, best validation ELBO, the test log p(x) "
        "with the estimator that gave it, and whether the run is running, finished or "
        "interrupted.",
    )
    p.add_argument("runs_dir", metavar="RUNS_DIR", nargs="?", default="runs")
    p.set_defaults(func=_cmd_list, subparser=p)

    p = sub.add_parser(
        "compare",
        help="log p(x) of several runs on the same test images, with paired differences",
        description="Put the test log p(x) of two or more runs side by side, each with the "
        "paired difference to the first run and its standard error over the same images. Runs "
        "must have been evaluated the same way on the same test tensor (refused otherwise).",
    )
    p.add_argument("run_dirs", metavar="RUN_DIR", nargs="+")
    p.add_argument(
        "--estimate",
        metavar="KEY",
        default=None,
        help="which evaluation to compare, e.g. is-K1000 or ais-T500-C8-L5 (default: the most "
        "expensive one every run holds)",
    )
    p.set_defaults(func=_cmd_compare, subparser=p)

    p = sub.add_parser(
        "report",
        help="write report.md and report.html for a run (figures redrawn first)",
        description="Redraw a run's figures from its directory and write report.md and a "
        "self-contained report.html: configuration, training curves, log p(x) with its error "
        "and diagnostics, the finite-mixture comparison and every figure, each with a sentence "
        "that says what it shows.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--device", type=device_name, default="cpu", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--no-figures", action="store_true", help="keep the figures as they are")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_source_options(p)
    p.set_defaults(func=_cmd_report, subparser=p)

    p = sub.add_parser(
        "figures",
        help="redraw a run's figures from its directory",
        description="Redraw the figures of a trained run without retraining.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--device", type=device_name, default="cpu", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_source_options(p)
    p.set_defaults(func=_cmd_figures, subparser=p)

    p = sub.add_parser(
        "datasets",
        help="list the named data sets and where they are found",
        description="List the named data sets and where each would be loaded "
        "from, without downloading anything.",
    )
    p.add_argument("--data-dir", type=path_text, default=None, metavar="DIR")
    p.set_defaults(func=_cmd_datasets, subparser=p)
    for command in TRUSTING_COMMANDS:
        add_trust_option(sub.choices[command])
    return parser


# ---------------------------------------------------------------------- commands


def _cmd_run(args: argparse.Namespace) -> int:
    from ..infer.objectives import objective_name
    from .console import print_baseline, print_evaluation
    from .main_job import run_main_job

    cfg = _config_or_resume(args, args.subparser)
    result = run_main_job(
        cfg,
        args.runs_dir,
        args.name,
        progress=not args.quiet,
        num_samples=args.num_samples,
        baseline_components=args.baseline_components,
        resume=args.resume,
        tensorboard=args.tensorboard,
        on_checked=_remember_parts,
    )
    run, last = result.run, result.history[-1]
    best = max(result.history, key=lambda r: r.val_elbo)
    print(f"run directory: {terminal_text(str(run.path))}")
    files = [run.config_path, run.metrics_path, run.checkpoint_path, run.file("evaluation.json")]
    if result.baseline:
        files.append(run.file("baseline.json"))
    print_files(files + result.figures, run.path)
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
    print_evaluation(result.evaluation)
    if result.baseline:
        print_baseline(result.baseline)
    print(f"report: {terminal_text(str(run.file('report.html')))} (and report.md)")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ..infer import distributed
    from .console import print_bdmc, print_evaluation
    from .evaluate import Estimator, evaluate_run
    from .evaluations import summary_name

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
    method = args.method or (None if args.bdmc else "is")
    estimator = Estimator(method=method, **settings) if method else None
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
            f"{ev.num_examples} {args.split} images, "
            f"{ev.seconds:.1f} s (nats per image):"
        )
        print_evaluation(ev)
    if out.bdmc is not None:
        print_bdmc(out.bdmc)
    print(f"written: {terminal_text(str(written))} ({', '.join(out.keys())})")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from .overview import HEADER, list_runs

    lines = list_runs(args.runs_dir)
    if not lines:
        print(f"no runs in {args.runs_dir}")
        return 0
    print(HEADER)
    for line in lines:
        print(line.text())
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .overview import compare_runs

    print(compare_runs(args.run_dirs, args.estimate).text())
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from ..infer import distributed
    from ..infer.training import check_batch_size, resolve_device
    from .registry import resolve
    from .runs import RunDirectory
    from .tensorboard import summary_writer_class
    from .train import check_fits_in_memory, completed_epochs, load_data, load_run_data, train

    cfg = _config_or_resume(args, args.subparser)
    dataset = load_run_data(cfg) if args.resume else load_data(cfg)
    untrusted = Path(args.resume) if args.resume else None
    cfg = resolve(cfg, dataset.data_dim, untrusted=untrusted)
    check_batch_size(cfg.train.batch_size, dataset)
    device = resolve_device(cfg.train.device)  # not there: refused before a run exists
    check_fits_in_memory(cfg, dataset, device, untrusted=untrusted)  # likewise too large
    if args.tensorboard:
        summary_writer_class()  # likewise a missing tensorboard package
    if not args.resume:
        _remember_parts(cfg)  # the checks passed: the user's parts are the user's choice
    group = distributed.init_from_environment(cfg.train.device)
    if args.resume:
        run = RunDirectory.open(args.resume)
        done = completed_epochs(run)
        if done >= cfg.train.epochs:
            if group.is_main:
                print(
                    f"{run.path} is complete: it has trained {done} of {cfg.train.epochs} "
                    "epochs; nothing to do (give --epochs N to train further)."
                )
            return 0
    elif group.is_main:  # process 0 creates the run and tells the others where it is
        run = RunDirectory.create(args.runs_dir, args.name)
    if group.active:
        path = distributed.broadcast_text(str(run.path) if group.is_main else None, group)
        run = RunDirectory(Path(path))
    trainer = train(
        cfg,
        run,
        progress=not args.quiet,
        dataset=dataset,
        resume=bool(args.resume),
        tensorboard=args.tensorboard,
        group=group,
    )
    if not group.is_main:
        return 0
    last = trainer.history[-1]
    print(f"run directory: {terminal_text(str(run.path))}")
    print(
        f"epoch {last.epoch}: train objective {last.train_objective:.3f}, validation ELBO "
        f"{last.val_elbo:.3f} nats per example"
    )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from ..infer.training import resolve_device
    from .figures import regenerate_figures
    from .report import write_report
    from .runs import RunDirectory

    device = args.device if args.no_figures else resolve_device(args.device)  # before any work
    with RunDirectory.open(args.run_dir).writing():  # figures and report from one model
        if not args.no_figures:
            regenerate_figures(args.run_dir, device, not args.quiet, args.data_dir, args.download)
        md, page = write_report(args.run_dir)
    print(f"report: {terminal_text(str(page))}\n        {terminal_text(str(md))}")
    return 0


def _cmd_figures(args: argparse.Namespace) -> int:
    from ..infer.training import resolve_device
    from .figures import regenerate_figures

    device = resolve_device(args.device)  # absent CUDA said as such, before any work
    paths = regenerate_figures(args.run_dir, device, not args.quiet, args.data_dir, args.download)
    print(f"figures of {terminal_text(str(args.run_dir))}:")
    print_files(paths, Path(args.run_dir))
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from ..data.datasets import DATASETS, default_data_dir, locate_dataset

    for name in sorted(DATASETS):
        where = locate_dataset(name, args.data_dir)
        print(f"{name:14s} {where or 'not found locally (downloaded on first use if online)'}")
    print(f"download/cache directory: {default_data_dir()} (set PYRO_VAE_DATA to change)")
    return 0


DISTRIBUTED_COMMANDS = ("train", "evaluate")
"""The commands that run as several processes (under torchrun)."""


def _preflight(args: argparse.Namespace) -> None:
    """The checks that need no torch, made before the command imports it: the run
    directories named exist, ``compare`` names each run once."""
    if args.command in RUN_COMMANDS:
        require_run_dir(args.run_dir)
    elif args.command == "list":
        require_runs_dir(args.runs_dir)
    elif args.command == "compare":
        for path in args.run_dirs:
            require_run_dir(path)
        run_labels(args.run_dirs)
    elif getattr(args, "resume", None) is not None:
        require_run_dir(args.resume)


def _out_of_memory(exc: BaseException) -> bool:
    """An allocation failed: Python's MemoryError, or PyTorch's RuntimeError (its CPU
    allocator's "can't allocate memory", CUDA's "out of memory")."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def _under_torchrun() -> bool:
    """Started by torchrun with several processes (checked without importing torch)."""
    if "RANK" not in os.environ:
        return False
    from ..infer.distributed import launched_distributed

    return launched_distributed()


def _shown(exc: BaseException) -> str:
    """An error's message for the terminal: a run's name or configuration string quoted in
    it shows its control characters as escapes (the message's own line breaks stay)."""
    return terminal_text(exc, keep_newlines=True)


def main(argv: Sequence[str] | None = None) -> int:
    tolerate_encoding()  # no command fails on a name the terminal's encoding cannot show
    parser = build_parser()
    args, unknown = parse_with_preset(parser, argv)
    if unknown:  # told by the command's own parser, which knows its options
        getattr(args, "subparser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
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
    # a user's part that does not give way is stopped anyway: a second signal, or a grace
    # period after the first, ends the process with the same message and status (.interrupts)
    with forced_exit() as watchdog, vouching(getattr(args, "trust", [])):
        code = _dispatch(args, parser, terminated, in_main_thread, previous)
        if watchdog is not None:
            watchdog.reported()
    return code


def _dispatch(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    terminated: list[int],
    in_main_thread: bool,
    previous: object,
) -> int:
    """Run the command; each error becomes its message and exit status."""
    try:
        if _under_torchrun() and args.command not in DISTRIBUTED_COMMANDS:
            raise ConfigError(
                f"{args.command!r} runs as one process; under torchrun with several processes "
                f"pyro-vae runs {' and '.join(DISTRIBUTED_COMMANDS)}"
            )
        _preflight(args)
        return args.func(args)
    except ConfigError as exc:
        parser.exit(2, f"pyro-vae: error: {_shown(exc)}\n")
    except TrainingInterrupted as exc:
        print(f"pyro-vae: {_shown(exc)}", file=sys.stderr)
        return 128 + (terminated[0] if terminated else signal.SIGINT)
    except PyroVAEError as exc:
        print(f"pyro-vae: error: {_shown(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pyro-vae: interrupted", file=sys.stderr)
        return 128 + (terminated[0] if terminated else signal.SIGINT)
    except BrokenPipeError:  # the reader went away (`pyro-vae ... | head -1`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the exit's flush cannot fail again
        return 128 + signal.SIGPIPE
    except (MemoryError, RuntimeError) as exc:  # what the memory estimate could not foresee
        if not _out_of_memory(exc):
            raise
        print(
            f"pyro-vae: error: out of memory ({first_line(exc)[:200]}). Ask for less (fewer "
            "samples, chains, steps, images or a smaller model), or free memory, then run the "
            "command again.",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:  # a full disk, a read-only directory, a path that is in the way
        where = f"{terminal_text(exc.filename)}: " if exc.filename else ""
        print(
            f"pyro-vae: error: {where}{exc.strerror or first_line(exc)}. Check that path (free "
            "space, permissions, a file or link in the way), then run the command again.",
            file=sys.stderr,
        )
        return 1
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        module = sys.modules.get("pyro_vae.infer.distributed")  # loaded only by those commands
        if module is not None:
            module.shutdown()  # after the message: a SIGTERM now just ends the process
    return 0


if __name__ == "__main__":
    sys.exit(main())
