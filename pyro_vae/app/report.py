"""The run report: one file that shows the whole experiment.

``write_report(run_dir)`` reads what a run directory holds (config, metrics, evaluation,
baseline, interpolation numbers, figures) and writes ``report.md`` (images linked) and
``report.html`` (self-contained: images embedded), each figure with one sentence that says what
it shows, in numbers where there are numbers. This module gathers a run's sections;
:mod:`.report_render` writes them as Markdown and HTML.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, first_line
from ..infer.objectives import objective_name
from ..model.vae import VAE
from ..store.baseline import Baseline
from ..store.evaluation import AISEvaluation, Evaluations, ISEvaluation
from ..store.interpolation import Interpolation
from .describe import describe_parts, model_summary
from .evaluations import describe_key, read_evaluations
from .figures_table import TABLE_FIGURES
from .gaps import gaps_blocks
from .provenance import read_provenance
from .records import read_baseline, read_interpolation
from .report_render import Block, Code, render_html, render_markdown
from .run_data import data_words, example_word, is_table
from .runs import RunDirectory, load_vae

Loaded = tuple[RunDirectory, Any, VAE]
"""A run's directory, configuration and model, as :func:`~.runs.load_vae` returns them."""


def _compare(d: float, se: float, better: str, worse: str, other: str, noun: str = "image") -> str:
    """Plain words for a paired difference d ± se against ``other``: a difference only beyond
    two standard errors."""
    if abs(d) <= 2 * se:
        return f"not distinguishable from {other} ({d:+.2f} ± {se:.2f} nats per {noun})"
    word = better if d > 0 else worse
    return f"{word} than {other} by {abs(d):.2f} ± {se:.2f} nats per {noun}"


def build_report(run_dir: str | Path, loaded: Loaded | None = None) -> list[Block]:
    """The report's blocks (rendered by :mod:`.report_render`). Every result file is read as a
    typed record, each field checked (:mod:`pyro_vae.store`), so a malformed one is refused by
    its reader with a message naming it, and what is read here can be formatted without
    failing. ``loaded``: the run's model as :func:`~.runs.load_vae` returns it, when the caller
    has it already."""
    run, cfg, vae = loaded if loaded is not None else load_vae(run_dir)
    description = describe_parts(vae, cfg.model)
    metrics = run.read_metrics()
    evaluations = read_evaluations(run)
    headline = evaluations.headline()
    ev = evaluations.largest_is()  # the IS estimate with the largest K: the diagnostics table
    base = read_baseline(run)
    interp = read_interpolation(run)
    d, t = cfg.data, cfg.train
    noun = example_word(d)  # "image", or "example" for a table's or a count matrix's rows
    objective = objective_name(t.elbo, t.particles, t.beta, t.kl_warmup)
    # the checkpoint's epochs, not the target: a run stopped early says so
    done = run.load_checkpoint().get("epoch")
    epochs = f"{done} epochs" if done == t.epochs else f"{done} of {t.epochs} epochs"
    blocks = [
        Block("h1", f"pyro-vae run: {run.path.name}"),
        Block(
            "p",
            [
                f"A {model_summary(description)} on ",
                Code(d.dataset),
                f" ({data_words(d)}), {description['parameters']:,} parameters; trained for "
                f"{epochs} on the {objective} with Adam "
                f"(lr {t.lr:g}, batch {t.batch_size}, seed {t.seed}). Report written "
                f"{time.strftime('%Y-%m-%d %H:%M')}. Log-likelihoods are in nats per {noun}; "
                "higher is better.",
            ],
        ),
    ]
    summary = []
    if headline:
        key, top = headline
        has_elbo = isinstance(top, ISEvaluation) and top.elbo is not None
        elbo = f"; ELBO {top.elbo:.3f}" if has_elbo else ""
        summary.append(
            f"Test log p(x) = {top.log_px:.3f} ± {_fmt(top.log_px_se)} "
            f"({describe_key(key)}, {top.num_examples} {noun}s), "
            f"{_fmt(top.bits_per_dim, 4)} bits per dimension{elbo}."
        )
    if base:
        diff = base.vae_minus_best_mixture
        summary.append(
            f"On the same test {noun}s the VAE's log p(x) is "
            + _compare(
                diff.mean,
                diff.se,
                "higher",
                "lower",
                f"the best finite mixture's, {base.best_mixture} (exact; chosen by validation "
                "log p(x))",
                noun,
            )
            + "."
        )
    if ev and ev.khat_above is not None:
        summary.append(_reliability_sentence(ev, noun))
    if summary:
        blocks += [Block("h2", "Summary"), Block("ul", items=summary)]

    blocks += [
        Block("h2", "Model"),
        _parts_table(description),
        Block("h2", "Configuration"),
        _config_table(cfg),
        *_provenance_blocks(run),
    ]

    if metrics:
        last = metrics[-1]
        best = max(metrics, key=lambda r: r.val_elbo)
        blocks += [
            Block("h2", "Training"),
            Block(
                "figure",
                src="figures/elbo_curves.png",
                text=f"After {last.epoch} epochs ({_fmt(last.wall_seconds, 0)} s, "
                f"{_count(last.examples_seen)} examples) the validation ELBO is "
                f"{last.val_elbo:.3f} (best {best.val_elbo:.3f}, epoch {best.epoch}); "
                f"the training {objective} averages {last.train_objective:.3f}, "
                f"{last.train_objective - last.val_elbo:+.3f} from the validation ELBO.",
            ),
        ]
    if len(evaluations.estimates) > 1 or evaluations.bdmc:
        blocks += [
            Block("h2", "Test log-likelihood by estimator"),
            *_estimates_blocks(evaluations, noun),
        ]
    if ev:
        blocks += [
            Block("h2", f"Test log-likelihood, importance sampling (K = {ev.num_samples})"),
            _evaluation_table(ev, noun),
            Block(
                "p",
                _reliability_sentence(ev, noun)
                if ev.khat_above is not None
                else "Pareto k-hat was not computed (K < 50).",
            ),
        ]
    blocks += gaps_blocks(run, noun)
    if base:
        blocks += [Block("h2", "Finite mixtures against the VAE"), _baseline_table(base)]
        diff = base.vae_minus_best_mixture
        blocks.append(
            Block(
                "figure",
                src="figures/gmm_vs_vae.png",
                text=f"The mixture with the best validation log p(x), {base.best_mixture}, "
                f"has {base.best.num_parameters:,} parameters against the "
                f"{base.vae.parameters_of_px:,} of the "
                f"VAE's p(x) (its encoder aside); on the test {noun}s the VAE's log p(x) is "
                + _compare(diff.mean, diff.se, "higher", "lower", "the mixture's", noun)
                + ". Left: samples of each; right: the mixture's component means beside the "
                "VAE's decoder means on a latent grid.",
            )
        )
    blocks.append(Block("h2", "What the model learned"))
    blocks += [
        Block("figure", src=src, text=sentence) for src, sentence in _figure_sentences(cfg, interp)
    ]
    # a figure that is not there (a train-only run, or --no-figures) is left out
    return [b for b in blocks if b.kind != "figure" or run.has_file(b.src)]


def _estimates_blocks(evaluations: Evaluations, noun: str = "image") -> list[Block]:
    """Every estimate side by side (paired with the headline's per-image values is left to
    ``pyro-vae compare``), and the BDMC sandwich in plain words."""
    rows = []
    for key, e in sorted(evaluations.estimates.items()):
        if isinstance(e, AISEvaluation):
            diag = (
                f"HMC acceptance {_fmt(e.acceptance_mean, 2)} (lowest {_fmt(e.acceptance_min, 2)})"
            )
            if e.unreliable:  # AIS's reliability flag (ESS over chains)
                diag += f"; unreliable: {e.unreliable} {noun}s"
        else:
            above = e.khat_above
            diag = "k-hat not computed" if above is None else f"k-hat > 0.7: {above} {noun}s"
        seconds = float("nan") if e.seconds is None else e.seconds
        rows.append(
            [
                describe_key(key),
                f"{e.log_px:.3f} ± {_fmt(e.log_px_se)}",
                _fmt(e.log_px_mc_se),
                str(e.num_examples),
                diag,
                f"{seconds:.0f}",
            ]
        )
    header = ["estimator", "log p(x)", "Monte Carlo error", f"{noun}s", "diagnostic", "seconds"]
    blocks = [Block("table", header=header, items=rows)]
    for key, b in sorted(evaluations.bdmc.items()):
        text = (
            f"{describe_key(key)}: on {noun}s simulated from the model, forward AIS (a "
            "stochastic lower bound) gives on average "
            f"{b.lower:.3f} and reverse AIS (a stochastic upper bound) {b.upper:.3f}: "
            f"an average gap of {b.gap:.3f} ± {_fmt(b.gap_se)} nats per {noun}. The "
            "bounds hold in expectation, so the average log p(x) lies between the average "
            "bounds up to their standard errors, and AIS at these settings is off on average "
            f"by at most about the gap; single {noun}s' bounds are noisy and can cross."
        )
        if b.is_num_samples and b.lower_minus_is is not None:
            d = -b.lower_minus_is
            text += (
                f" Importance sampling with K = {b.is_num_samples} on the same {noun}s lies "
                f"{abs(d):.3f} ± {_fmt(b.lower_minus_is_se)} nats "
                f"{'above' if d > 0 else 'below'} the AIS lower bound."
            )
        blocks.append(Block("p", text))
    return blocks


def _fmt(value: float | None, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if value is not None else "n/a"


def _count(value: int | None) -> str:
    return f"{value:,}" if value is not None else "n/a"


def _reliability_sentence(ev: ISEvaluation, noun: str = "image") -> str:
    n, above = ev.num_examples, ev.khat_above or 0
    ess = f"the median effective sample size is {_fmt(ev.ess_median, 0)} of {ev.num_samples}"
    if above == 0:
        return (
            f"Importance sampling (K = {ev.num_samples}): Pareto k-hat is at most 0.7 for all "
            f"{n} test {noun}s (max {_fmt(ev.khat_max, 2)}) and {ess}: the estimate can be "
            "trusted."
        )
    return (
        f"Importance sampling (K = {ev.num_samples}): Pareto k-hat exceeds 0.7 for {above} "
        f"of {n} test {noun}s ({100 * above / n:.0f} %) "
        f"and {ess}: for those {noun}s the importance weights are too heavy-tailed for the "
        "estimate (and its Monte Carlo error) to be trusted; it is likely too low. A larger "
        "K, or a guide closer to the posterior (a flow or full-covariance guide), helps; "
        "AIS (pyro-vae evaluate RUN --method ais) does not depend on the guide being good."
    )


def _parts_table(description: dict[str, Any]) -> Block:
    rows = []
    for kind, part in description["parts"].items():
        options = ", ".join(f"{k}={json.dumps(v)}" for k, v in part["kwargs"].items())
        rows.append(
            [
                kind,
                part["name"],
                Code(part["import_path"]),
                options or "-",
                f"{part['parameters']:,}",
            ]
        )
    return Block(
        "table", header=["part", "name", "import path", "options", "parameters"], items=rows
    )


def _provenance_blocks(run: RunDirectory, last: int = 10) -> list[Block]:
    """What produced the run's numbers (``provenance.json``): the last ``last`` commands."""
    try:
        entries = read_provenance(run).entries
    except CheckpointError as exc:  # informative only: said, never a reason to stop
        return [Block("h2", "Provenance"), Block("p", f"Not shown: {first_line(exc)}")]
    if not entries:
        return [
            Block("h2", "Provenance"),
            Block("p", "This run records no provenance (a run written before pyro-vae 0.3)."),
        ]
    rows = [
        [
            e.time,
            e.command,
            "" if e.epoch is None else str(e.epoch),
            e.pyro_vae_version + (f" ({_short_commit(e.git_commit)})" if e.git_commit else ""),
            f"torch {e.torch_version}, Pyro {e.pyro_version}, Python {e.python_version}",
            f"{e.host}, {e.device}",
            e.argv,
        ]
        for e in entries[-last:]
    ]
    header = ["time (UTC)", "command", "epoch", "pyro-vae", "libraries", "host, device", "as run"]
    shown = f"the last {last} of {len(entries)}" if len(entries) > last else "every"
    return [
        Block("h2", "Provenance"),
        Block(
            "p",
            f"What produced these numbers: {shown} command that trained or evaluated "
            "the run (provenance.json).",
        ),
        Block("table", header=header, items=rows),
    ]


def _short_commit(commit: str) -> str:
    return commit[:12] + ("+dirty" if commit.endswith("+dirty") else "")


def _config_table(cfg) -> Block:
    rows = []
    for section in ("data", "model", "train"):
        values = getattr(cfg, section)
        for field in dataclasses.fields(values):  # declared settings (no frozen marker)
            rows.append([section, field.name, json.dumps(getattr(values, field.name))])
    return Block("table", header=["section", "option", "value"], items=rows)


def _evaluation_table(ev: ISEvaluation, noun: str = "image") -> Block:
    rows = [
        ["log p(x), importance sampling", f"{ev.log_px:.3f} ± {_fmt(ev.log_px_se)}"],
        ["Monte Carlo error of that mean", _fmt(ev.log_px_mc_se)],
        ["ELBO (same draws)", f"{_fmt(ev.elbo)} ± {_fmt(ev.elbo_se)}"],
        ["log p(x) − ELBO", f"{_fmt(ev.gap)} ± {_fmt(ev.gap_se)}"],
        [
            "bits per dimension (log p, ELBO)",
            f"{_fmt(ev.bits_per_dim, 4)}, {_fmt(ev.elbo_bits_per_dim, 4)}",
        ],
        [f"importance samples K; {noun}s", f"{ev.num_samples}; {ev.num_examples}"],
        ["effective sample size (median, min)", f"{_fmt(ev.ess_median, 0)}, {_fmt(ev.ess_min, 1)}"],
        ["Pareto k-hat (mean, max)", f"{_fmt(ev.khat_mean, 2)}, {_fmt(ev.khat_max, 2)}"],
        [f"{noun}s with k-hat > 0.7", str(ev.khat_above)],
    ]
    return Block("table", header=["quantity", "value"], items=rows)


def _baseline_table(base: Baseline) -> Block:
    rows = [
        [
            r.model + (" (best by validation)" if r.model == base.best_mixture else ""),
            f"{r.log_px:.3f} ± {r.log_px_se:.3f}",
            f"{float('nan') if r.val_log_px is None else r.val_log_px:.3f}",
            f"{r.bits_per_dim:.4f}",
            f"{r.num_parameters:,}",
            "exact",
        ]
        for r in base.mixtures
    ]
    v = base.vae
    rows.append(
        [
            "VAE",
            f"{v.log_px:.3f} ± {v.log_px_se:.3f}",
            "",
            f"{v.bits_per_dim:.4f}",
            f"{v.parameters_of_px:,}",
            f"importance sampling, K = {v.num_samples}",
        ]
    )
    header = [
        "model",
        "test log p(x)",
        "validation log p(x)",
        "test bits/dim",
        "parameters of p(x)",
        "how",
    ]
    return Block("table", header=header, items=rows)


def _figure_sentences(cfg, interp: Interpolation | None) -> list[tuple[str, str]]:
    if is_table(cfg.data):  # a data file's rows: per-feature figures
        return list(TABLE_FIGURES)
    where = (
        "along its one latent dimension"
        if cfg.model.latent_dim == 1
        else "over its two latent dimensions"
        if cfg.model.latent_dim == 2
        else "along the two most active latent dimensions"
    )
    out = [
        (
            "figures/reconstructions.png",
            "Test images and their reconstructions E[x | z] at the posterior mean: what the code "
            "keeps of an image (blur is the likelihood's uncertainty, not noise).",
        ),
        (
            "figures/samples.png",
            "Decoder means E[x | z] for 64 draws z ~ p(z): what the model generates.",
        ),
        (
            "figures/manifold.png",
            "The learned manifold (Kingma & Welling's Fig. 4): decoder means over a grid of z at "
            f"the quantiles of the prior's marginals ({cfg.model.prior}), {where}.",
        ),
        (
            "figures/latent_space.png",
            "Where the test images land in latent space (posterior means; t-SNE when z has more "
            "than two dimensions), coloured by class, which the model never saw.",
        ),
    ]
    if interp:
        binary = interp.binary
        judged = "as its most probable binary image" if binary else "as decoded"
        judges = "; ".join(
            f"under {name}{' (itself: self-assessment)' if name == 'VAE' else ''}, the VAE's "
            "frames score "
            + _compare(
                j.vae_minus_autoencoder,
                j.vae_minus_autoencoder_se,
                "higher",
                "lower",
                "the autoencoder's",
            )
            for name, j in interp.judges.items()
        )
        caveat = (
            " (A blurrier frame thresholds to a more typical image, which favours the "
            "smoother decoder.)"
            if binary
            else ""
        )
        out.append(
            (
                "figures/interpolation.png",
                f"Straight lines between the codes of {interp.pairs} pairs of test images "
                f"({_classes_text(interp.classes)}), decoded by a plain "
                "autoencoder with the same networks and by the VAE; each interior frame is scored "
                f"{judged}: {judges}.{caveat}",
            )
        )
    return out


def write_report(run_dir: str | Path, loaded: Loaded | None = None) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into the run directory (holding its lock);
    ``loaded``: the run's model, when the caller has it (see :func:`build_report`)."""
    run = RunDirectory.open(run_dir)
    with run.writing():
        blocks = build_report(run.path, loaded)
        md = run.write_text("report.md", render_markdown(blocks))
        page = run.write_text("report.html", render_html(blocks, run.path))
    return md, page


def _classes_text(classes: tuple[int, int]) -> str:
    """The classes of the interpolated pairs: ``classes 2 to 9``, or one class when the test
    images are all of it."""
    first, second = classes
    return f"both of class {first}" if first == second else f"classes {first} to {second}"
