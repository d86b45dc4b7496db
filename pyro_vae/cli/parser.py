"""The parser of ``pyro-vae``: its commands and their options (those of ``run`` and ``train``
generated from the settings' declarations, :mod:`pyro_vae.app.options`). Nothing here imports
torch, Pyro or matplotlib: ``--help`` and usage errors answer at once."""

from __future__ import annotations

import argparse

from .. import __version__
from ..app.options import (
    add_config_options,
    add_output_options,
    device_name,
    path_text,
    positive_int,
    seed_int,
)
from ..app.trust import add_trust_option
from ..app.usage import UsageParser
from ..config.constraints import nonnegative_int, threads_count
from . import commands


def add_data_source_options(p: argparse.ArgumentParser) -> None:
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


def add_threads_option(p: argparse.ArgumentParser) -> None:
    """``--threads``: how many threads PyTorch computes with (:mod:`pyro_vae.app.threads`)."""
    p.add_argument(
        "--threads",
        type=threads_count,
        default=None,
        metavar="N",
        help="threads PyTorch computes with: a number, or auto (the default; unless "
        "OMP_NUM_THREADS is set): the cores this process may use less the work already "
        "running, looked at again every half second while training, so that a busy machine "
        "is not oversubscribed (give a number for a count that never changes)",
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
        help="importance samples per test example for log p(x) (default: %(default)s; the "
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
    p.add_argument(
        "--autoencoder-epochs",
        type=nonnegative_int,
        default=None,
        metavar="N",
        help="epochs of the plain autoencoder the interpolation figure compares with (default: "
        "the VAE's, the fair comparison); 0: no autoencoder and no interpolation figure",
    )
    p.set_defaults(func=commands.cmd_run)

    p = sub.add_parser(
        "train",
        help="train only (config, metrics, checkpoint)",
        description="Train a VAE into a new run directory, without evaluation or figures.",
    )
    add_config_options(p)
    add_output_options(p)
    p.set_defaults(func=commands.cmd_train, subparser=p)

    p = sub.add_parser(
        "evaluate",
        help="log p(x) of a trained run: importance sampling, AIS, the BDMC sandwich",
        description="Estimate log p(x) of a trained run on a data split. --method is "
        "(default): importance sampling with the guide as proposal (Burda et al. 2015), with "
        "standard errors, the ELBO from the same draws, effective sample sizes and Pareto "
        "k-hat. --method ais: annealed importance sampling with HMC transitions (Neal 2001; "
        "Wu et al. 2017), tighter where k-hat says IS cannot be trusted. --bdmc N: the "
        "bidirectional Monte Carlo sandwich (Grosse et al. 2015) on N examples simulated from "
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
        help="importance samples per example, for IS and for the IS row of --bdmc "
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
        help="AIS: independent chains per example (default: %(default)s)",
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
        help="also run the BDMC sandwich on N examples simulated from the model",
    )
    p.add_argument(
        "--gaps",
        action="store_true",
        help="the inference gaps per example (Cremer et al. 2018): the encoder's ELBO, the ELBO* "
        "of q refined for each example alone, log p(x) by AIS (--steps/--chains/--leapfrog), "
        "hence the approximation gap log p(x) - ELBO* and the amortization gap ELBO* - ELBO; "
        "the ELBOs from --num-samples draws each (kept as gaps-R<steps>-T<T>-C<C>-L<L>)",
    )
    p.add_argument(
        "--refine-steps",
        type=positive_int,
        default=None,
        metavar="R",
        help="--gaps: Adam steps refining q per example (default: 200)",
    )
    p.add_argument(
        "--refine",
        type=positive_int,
        default=None,
        metavar="STEPS",
        help="importance sampling with q refined per example for STEPS Adam steps as the "
        "proposal (kept as is-K<K>-R<STEPS>)",
    )
    p.add_argument("--split", choices=["test", "val", "train"], default="test")
    p.add_argument(
        "--images",
        "--examples",
        dest="images",
        type=positive_int,
        default=None,
        metavar="N",
        help="only the split's first N examples (images, or a table's rows; a quick look; "
        "kept under its own key, e.g. is-K5000-first100, and paired in compare only with the "
        "same examples)",
    )
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the estimators' draws")
    p.add_argument("--device", type=device_name, default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_source_options(p)
    p.set_defaults(func=commands.cmd_evaluate, subparser=p)

    p = sub.add_parser(
        "list",
        help="one line per run: data, parts, epochs, best validation ELBO, log p(x), status",
        description="List the runs in a directory of runs: data set, prior / guide / "
        "likelihood, epochs done of those asked for, best validation ELBO, the test log p(x) "
        "with the estimator that gave it, and whether the run is running, finished or "
        "interrupted.",
    )
    p.add_argument("runs_dir", metavar="RUNS_DIR", nargs="?", default="runs")
    p.set_defaults(func=commands.cmd_list, subparser=p)

    p = sub.add_parser(
        "compare",
        help="log p(x) of several runs on the same test examples, with paired differences",
        description="Put the test log p(x) of two or more runs side by side, each with the "
        "paired difference to the first run and its standard error over the same examples. Runs "
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
    p.set_defaults(func=commands.cmd_compare, subparser=p)

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
    add_data_source_options(p)
    p.set_defaults(func=commands.cmd_report, subparser=p)

    p = sub.add_parser(
        "figures",
        help="redraw a run's figures from its directory",
        description="Redraw the figures of a trained run without retraining.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--device", type=device_name, default="cpu", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_source_options(p)
    p.set_defaults(func=commands.cmd_figures, subparser=p)

    p = sub.add_parser(
        "datasets",
        help="list the named data sets and where they are found",
        description="List the named data sets and where each would be loaded "
        "from, without downloading anything.",
    )
    p.add_argument("--data-dir", type=path_text, default=None, metavar="DIR")
    p.set_defaults(func=commands.cmd_datasets, subparser=p)
    for command in TRUSTING_COMMANDS:  # the commands that compute read a run's configuration
        add_trust_option(sub.choices[command])
        add_threads_option(sub.choices[command])
    return parser
