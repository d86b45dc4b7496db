"""Before any job trains or writes: :func:`prepare` turns a configuration into a :class:`Plan`.

It loads the data, resolves the configuration once into a frozen
:class:`~pyro_vae.app.config.ResolvedConfig` (validated, defaults filled in, parts found, the
model built on the ``meta`` device and checked against the options), makes every check that
can refuse the run (batch size, device, memory, baseline components, the tensorboard package),
builds the model once for real from the run's seed (its parts run once on a tiny batch against
their contract), and opens the run directory. The jobs (:mod:`.train`, :mod:`.run`) take the
plan as it is: nothing is checked or built twice, and nothing is written before every check
has passed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyro
import torch

from ..app.baseline import check_components
from ..app.config import DataConfig, ResolvedConfig, RunConfig
from ..app.run_data import data_record, load_new_data, load_run_data
from ..app.runs import RunDirectory
from ..app.tensorboard import summary_writer_class
from ..app.vae_build import build_checked, check_on_meta, settle
from ..config.datasets import is_file_source
from ..data.datasets import ImageDataset
from ..infer import distributed
from ..infer.devices import resolve_device
from ..infer.memory import check_memory, estimate_memory
from ..infer.training_data import check_batch_size
from ..model.vae import VAE
from ..rng import rng_state, set_rng_seed


@dataclass
class Plan:
    """A run ready to start: its resolved configuration, data, device, model and directory.

    ``vae`` was built from ``cfg.train.seed`` (its initial weights are those of a run started
    with that seed) and ``rng`` is the random state just after that build, where training
    starts from. ``run`` is ``None`` when the caller opens the directory itself
    (``open_run=False``). ``untrusted``: the run directory the configuration was read from
    (a resume), whose modules are never imported (see :mod:`pyro_vae.app.part_import`)."""

    cfg: ResolvedConfig
    dataset: ImageDataset
    device: torch.device
    vae: VAE
    rng: dict[str, Any]
    run: RunDirectory | None = None
    resume: bool = False
    untrusted: Path | None = None
    group: distributed.ProcessGroup = distributed.SINGLE


def prepare(
    cfg: RunConfig,
    runs_dir: str | Path = "runs",
    name: str | None = None,
    *,
    resume: str | Path | None = None,
    dataset: ImageDataset | None = None,
    num_samples: int | None = None,
    baseline_components: Sequence[int] = (),
    tensorboard: bool = False,
    on_checked: Callable[[ResolvedConfig], None] | None = None,
    join_group: bool = False,
    open_run: bool = True,
) -> Plan:
    """Everything before a job's first write, in order (see the module's notes).

    ``resume``: the run directory ``cfg`` was read from, opened instead of creating
    ``runs_dir/name``. ``num_samples``: the job also estimates log p(x) with that many
    importance samples per test image (counted in the memory check); ``baseline_components``:
    the finite mixtures it fits. ``on_checked`` is called with the resolved configuration once
    every check has passed, before a new run directory is created. ``join_group``: join the
    process group torchrun describes (``pyro-vae train``); process 0 creates the run and the
    others open it. ``open_run=False``: the caller opens or creates the directory."""
    untrusted = Path(resume) if resume is not None else None
    if resume is None and dataset is None and is_file_source(cfg.data.dataset):
        cfg.validate()  # a data file of the user's is read first: what it holds chooses the
        dataset = load_data(cfg)  # pixels, and the configuration records it
    if resume is None and dataset is not None and dataset.record is not None:
        cfg = cfg.copy()
        for key, value in data_record(dataset).items():
            setattr(cfg.data, key, value)
    settled = settle(cfg, untrusted)  # valid, parts found: before its data are looked for
    if dataset is None:  # a run's config.json chooses its data, never where anything goes
        dataset = (  # a new run's are the user's (the command line): see load_data
            load_run_data(settled, run=resume) if resume is not None else load_data(settled)
        )
    resolved, meta = check_on_meta(settled, dataset.data_dim, untrusted)
    t = resolved.train
    check_batch_size(t.batch_size, dataset)
    check_components(baseline_components, len(dataset.train))
    device = resolve_device(t.device)  # an absent device is refused before a run exists
    if meta is not None:
        sizes = (resolved.model.latent_dim, t.batch_size, t.particles, t.eval_particles)
        _check_memory(meta, dataset, device, num_samples, *sizes)
    if tensorboard:
        summary_writer_class()  # a missing package, likewise
    pyro.clear_param_store()
    set_rng_seed(t.seed)  # the initial weights are those of the run's seed
    vae = build_checked(resolved, dataset.data_dim, untrusted)
    rng = rng_state()
    if on_checked is not None and resume is None:
        on_checked(resolved)
    group = distributed.init_from_environment(t.device) if join_group else distributed.SINGLE
    _check_same_data(resolved.data, group)
    device = resolve_device(distributed.device_for(t.device, group))
    plan = Plan(resolved, dataset, device, vae, rng, None, resume is not None, untrusted, group)
    if open_run:
        plan.run = _open_run(runs_dir, name, resume, group)
    return plan


def _check_same_data(data: DataConfig, group: distributed.ProcessGroup) -> None:
    """Under torchrun, every process read its own copy of a data file (a new run records the
    SHA-256 of the copy it read; a resumed one checked its copy against config.json): the
    same one."""
    if data.data_sha256 is not None:
        digest = f"{data.data_sha256} {data.test_sha256}"
        distributed.check_same_data(digest, f"data file {data.dataset}", group)


def load_data(cfg: RunConfig) -> ImageDataset:
    """The data set of a new run: its configuration is the user's (the command line).
    :func:`prepare` makes the same call from the settings themselves, so that the
    configuration, once handed down the layers, does not come back up to this module."""
    d = cfg.data
    return load_new_data(
        d.dataset,
        d.data_dir,
        d.download,
        label_column=d.label_column,
        kind=d.data_kind,
        test_file=d.test_file,
        split_seed=d.split_seed,
    )


def _check_memory(
    meta: VAE,
    dataset: ImageDataset,
    device: torch.device,
    num_samples: int | None,
    latent_dim: int,
    batch_size: int,
    particles: int,
    eval_particles: int,
) -> None:
    """Refuse a run that would not fit in the memory free on ``device``
    (:func:`~pyro_vae.infer.memory.estimate_memory`, counted on the ``meta`` model). It takes
    the settings it reads, not the configuration, which goes from :func:`prepare` down the
    layers only (``tests/integration/test_config_path.py``)."""
    estimate = estimate_memory(
        meta,
        dataset.data_dim,
        latent_dim,
        batch_size,
        particles=particles,
        eval_particles=eval_particles,
        num_train=len(dataset.train),
        num_val=len(dataset.val),
        num_samples=num_samples,
        num_test=len(dataset.test),
    )
    check_memory(estimate, device, what="this run")


def _open_run(
    runs_dir: str | Path,
    name: str | None,
    resume: str | Path | None,
    group: distributed.ProcessGroup,
) -> RunDirectory:
    """The run's directory: the resumed one, or a new one that process 0 creates and tells the
    others about."""
    if resume is not None:
        return RunDirectory.open(resume)
    run = RunDirectory.create(runs_dir, name) if group.is_main else None
    if not group.active:
        assert run is not None
        return run
    path = distributed.broadcast_text(str(run.path) if run is not None else None, group)
    return RunDirectory(Path(path))
