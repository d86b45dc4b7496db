"""Data-parallel training and sharded evaluation on torch.distributed (gloo, 2 processes).

The fast tests check the pieces (shards, seeds, shuffles, the recorded configuration, what is
refused); the ``e2e`` ones start real process groups: two processes spawned here, and
``torchrun`` running the command line.
"""

from __future__ import annotations

import json

import pytest
import torch

from pyro_vae import RunConfig
from pyro_vae.cli import main
from pyro_vae.errors import ConfigError
from pyro_vae.infer import distributed
from pyro_vae.infer.distributed import (
    SINGLE,
    epoch_permutation,
    process_seed,
    shard_bounds,
)

# ---------------------------------------------------------------------- pieces


@pytest.mark.parametrize("n", [1, 7, 99, 100, 101, 360, 1000])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
@pytest.mark.parametrize("multiple", [1, 40, 100])
def test_shards_are_contiguous_disjoint_cover_everything_on_batch_boundaries(n, world, multiple):
    bounds = [shard_bounds(n, r, world, multiple) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    for (_, stop), (start, _) in zip(bounds, bounds[1:], strict=False):
        assert stop == start  # contiguous, in rank order, no overlap
    for start, stop in bounds:
        assert start <= stop
        assert start % multiple == 0 or start == n  # a batch never straddles two processes
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(s for s in sizes) <= multiple * ((n + multiple - 1) // multiple)


def test_bad_shard_is_refused():
    with pytest.raises(ValueError):
        shard_bounds(10, 2, 2)


def test_process_seeds_one_process_keeps_the_run_seed_several_differ():
    assert process_seed(123, 0, 1) == 123
    seeds = {process_seed(123, r, 4) for r in range(4)}
    assert len(seeds) == 4 and 123 not in seeds
    assert process_seed(123, 1, 4) == process_seed(123, 1, 2)  # a rank's seed: seed and rank


def test_epoch_permutation_is_shared_and_changes_with_the_epoch():
    a, b = epoch_permutation(50, 7, 1), epoch_permutation(50, 7, 1)
    assert torch.equal(a, b) and sorted(a.tolist()) == list(range(50))
    assert not torch.equal(a, epoch_permutation(50, 7, 2))
    assert not torch.equal(a, epoch_permutation(50, 8, 1))


def test_single_process_is_not_distributed(monkeypatch):
    for key in distributed.ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    assert distributed.init_from_environment("cpu") is SINGLE
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")  # torchrun with one process: a plain run
    assert distributed.init_from_environment("cpu") is SINGLE


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan"])
def test_a_bad_timeout_is_refused(monkeypatch, value):
    monkeypatch.setenv(distributed.TIMEOUT_ENV, value)
    with pytest.raises(ConfigError, match=distributed.TIMEOUT_ENV):
        distributed.timeout_seconds()


def test_distributed_section_round_trips_and_is_checked():
    cfg = RunConfig()
    cfg.distributed.processes, cfg.distributed.backend = 2, "gloo"
    cfg.distributed.process_seeds = [process_seed(0, r, 2) for r in range(2)]
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again.distributed == cfg.distributed
    assert RunConfig.from_dict({}).distributed.processes == 1  # older configurations
    bad = RunConfig.from_dict({"distributed": {"processes": 0, "backend": "mpi"}})
    assert len(bad.problems()) == 2


@pytest.mark.parametrize("command", [["report", "somewhere"], ["figures", "somewhere"]])
def test_commands_that_run_as_one_process_are_refused_under_torchrun(monkeypatch, capsys, command):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit) as exit_info:
        main(command)
    assert exit_info.value.code == 2
    assert "runs as one process" in capsys.readouterr().err
