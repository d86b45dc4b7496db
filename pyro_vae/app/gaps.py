"""The inference gaps of a trained run (``pyro-vae evaluate RUN --gaps``; Cremer, Li & Duvenaud
2018): per image, the encoder's ELBO, the ELBO* of q refined for that image alone
(:mod:`pyro_vae.infer.refine`) and log p(x) by AIS, hence

    log p(x) - ELBO = [log p(x) - ELBO*]  +  [ELBO* - ELBO]
                      approximation gap      amortization gap

kept in ``evaluation.json`` under ``gaps`` (key ``gaps-R<steps>-T<T>-C<C>-L<L>``), per-image
values beside it; a figure of the gaps per image; the report's section and ``compare``'s
lines."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from ..infer.ais import log_marginal_ais
from ..infer.marginal import mean_and_se
from ..infer.refine import refine
from ..model.parts import prior_guide_site
from ..model.vae import VAE
from .evaluations import describe_key, load_points, read_evaluations
from .plots import _save, plt
from .report_render import Block
from .runs import RunDirectory


def vae_extra_sites(vae: VAE):
    """The guide's statements after z (a hierarchical prior's own), for :func:`refine`."""
    return lambda z, x: prior_guide_site(vae.prior, "z", z, x)


def compute_gaps(
    vae: VAE,
    x: torch.Tensor,
    *,
    refine_steps: int,
    num_samples: int,
    num_steps: int,
    num_chains: int,
    num_leapfrog: int,
    start: str = "guide",
    seed: int = 0,
    progress: bool = False,
) -> tuple[dict[str, Any], GapPoints]:
    """The gaps of the images ``x``: the record's fields (without its header) and the
    per-image values."""
    began = time.perf_counter()
    refined = refine(
        vae.model,
        vae.encoder,
        x,
        steps=refine_steps,
        eval_samples=num_samples,
        extra_sites=vae_extra_sites(vae),
        seed=seed,
        progress=progress,
    )
    ais = log_marginal_ais(
        vae.model,
        vae.guide,
        x,
        num_steps=num_steps,
        num_chains=num_chains,
        num_leapfrog=num_leapfrog,
        start=start,
        seed=seed,
        progress=progress,
    )
    points = GapPoints(
        log_px=ais.log_px.double(),
        log_px_mc_se=ais.mc_se.double(),
        elbo=refined.amortized_elbo,
        elbo_mc_se=refined.amortized_elbo_se,
        refined_elbo=refined.elbo,
        refined_elbo_mc_se=refined.elbo_se,
    )
    record = {
        "method": "gaps",
        "num_examples": len(x),
        "refine_steps": refine_steps,
        "num_samples": num_samples,
        "num_steps": num_steps,
        "num_chains": num_chains,
        "num_leapfrog": num_leapfrog,
        "start": start,
        **points.summary(),
        "ais_unreliable": int((~ais.reliable).sum()),
        "seconds": time.perf_counter() - began,
    }
    return record, points


@dataclass
class GapPoints:
    """The per-image values of a gaps analysis (``[N]`` tensors; ``*_mc_se``: Monte Carlo
    errors), kept beside its record as a dict of these names."""

    log_px: torch.Tensor
    log_px_mc_se: torch.Tensor
    elbo: torch.Tensor
    elbo_mc_se: torch.Tensor
    refined_elbo: torch.Tensor
    refined_elbo_mc_se: torch.Tensor

    @property
    def approximation_gap(self) -> torch.Tensor:
        """log p(x) - ELBO* per image."""
        return self.log_px - self.refined_elbo

    @property
    def approximation_gap_mc_se(self) -> torch.Tensor:
        return torch.hypot(self.log_px_mc_se, self.refined_elbo_mc_se)

    @property
    def amortization_gap(self) -> torch.Tensor:
        """ELBO* - ELBO per image."""
        return self.refined_elbo - self.elbo

    @property
    def amortization_gap_mc_se(self) -> torch.Tensor:
        return torch.hypot(self.refined_elbo_mc_se, self.elbo_mc_se)

    def to_dict(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def summary(self) -> dict[str, Any]:
        """The record's means (``*_se`` over images, ``*_mc_se`` Monte Carlo)."""
        out: dict[str, Any] = {}
        for name in ("log_px", "elbo", "refined_elbo", "approximation_gap", "amortization_gap"):
            values, mc_se = getattr(self, name), getattr(self, f"{name}_mc_se")
            mean, se = mean_and_se(values)
            mc = mc_se.double().pow(2).sum().sqrt().item() / len(values)
            out[name] = mean
            if name not in ("elbo", "refined_elbo"):
                out[f"{name}_se"] = se if math.isfinite(se) else None
            out[f"{name}_mc_se"] = mc if math.isfinite(mc) else None
        return out


def draw_gaps(points: GapPoints, path: Path, title: str, noun: str = "image") -> Path:
    """Stacked bars, one per image sorted by log p(x) - ELBO: the amortization gap on the
    approximation gap, with the Monte Carlo error of their sum."""
    approx, amort = points.approximation_gap.numpy(), points.amortization_gap.numpy()
    order = (approx + amort).argsort()
    n = len(order)
    fig, ax = plt.subplots(figsize=(min(12.0, 4.0 + 0.08 * n), 3.6))
    at = range(n)
    ax.bar(at, approx[order], width=0.9, color="tab:blue", label="approximation: log p(x) - ELBO*")
    ax.bar(
        at,
        amort[order],
        width=0.9,
        bottom=approx[order].clip(min=0),
        color="tab:orange",
        label="amortization: ELBO* - ELBO",
    )
    error = torch.hypot(points.approximation_gap_mc_se, points.amortization_gap_mc_se).numpy()
    ax.errorbar(at, (approx + amort)[order], yerr=error[order], fmt="none", ecolor="k", lw=0.7)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel(f"{noun} (sorted by log p(x) - ELBO)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("nats")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


def figure_name(key: str) -> str:
    return f"figures/{key}.png"


def gaps_blocks(run: RunDirectory, noun: str = "image") -> list[Block]:
    """The report's section on the inference gaps (nothing when none was computed); ``noun``:
    what an example is called (:func:`~.run_data.example_word`)."""
    found = read_evaluations(run).gaps
    if not found:
        return []
    rows = []
    for key, g in sorted(found.items()):
        rows.append(
            [
                describe_key(key),
                str(g.num_examples),
                _pm(g.log_px, g.log_px_mc_se),
                _pm(g.refined_elbo, g.refined_elbo_mc_se),
                _pm(g.elbo, g.elbo_mc_se),
                _pm(g.approximation_gap, g.approximation_gap_se),
                _pm(g.amortization_gap, g.amortization_gap_se),
            ]
        )
    header = ["analysis", f"{noun}s", "log p(x) (AIS)", "ELBO*", "ELBO", "approximation gap"]
    blocks = [
        Block("h2", "Where the bound is loose: the inference gaps"),
        Block(
            "p",
            f"log p(x) by AIS; ELBO*: the ELBO of q refined for each {noun} alone; ELBO: the "
            f"encoder's (nats per {noun}, each ± its Monte Carlo error; the gaps ± their "
            f"standard error over the same {noun}s).",
        ),
        Block("table", header=[*header, "amortization gap"], items=rows),
    ]
    key, g = max(found.items(), key=lambda item: item[1].num_examples)
    total = g.approximation_gap + g.amortization_gap
    share = g.amortization_gap / total if total > 0 else float("nan")
    blocks.append(
        Block(
            "figure",
            src=figure_name(key),
            text=f"Of the {total:.2f} nats per {noun} between the encoder's ELBO and log p(x) "
            f"({g.num_examples} {noun}s), {g.approximation_gap:.2f} ± "
            f"{_fmt(g.approximation_gap_se)} are the approximation gap (the guide's family "
            "cannot hold the posterior: a richer family would close it) and "
            f"{g.amortization_gap:.2f} ± {_fmt(g.amortization_gap_se)} the amortization gap "
            f"({share:.0%}: the encoder does not find the best member of its family for each "
            f"{noun}; refining q per {noun} for {g.refine_steps} steps closes it). The bars "
            f"show each {noun}'s gaps, sorted by their sum; ELBO* is itself a lower bound of the "
            "best member's ELBO, so the amortization gap is a lower bound and the "
            "approximation gap an upper one.",
        )
    )
    return [b for b in blocks if b.kind != "figure" or run.has_file(b.src)]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _pm(value: float, se: float | None) -> str:
    return f"{value:.3f} ± {_fmt(se)}"


def compare_gaps(run_dirs: list[str], names: list[str], noun: str = "image") -> list[str]:
    """``compare``'s lines on the inference gaps: each run's mean gaps by its largest gaps
    analysis (none when no run holds one)."""
    lines = []
    for path, name in zip(run_dirs, names, strict=True):
        run = RunDirectory.open(path)
        found = read_evaluations(run).gaps
        if not found:
            lines.append(f"  {name:28s} no gaps analysis (pyro-vae evaluate RUN --gaps)")
            continue
        key, g = max(found.items(), key=lambda item: item[1].num_examples)
        load_points(run, key)  # the per-image values are there and sound
        lines.append(
            f"  {name:28s} approximation {_pm(g.approximation_gap, g.approximation_gap_se)}  "
            f"amortization {_pm(g.amortization_gap, g.amortization_gap_se)}  ({key})"
        )
    if all(line.endswith("--gaps)") for line in lines):
        return []
    return [f"inference gaps, nats per {noun} (± standard error over {noun}s):", *lines]
