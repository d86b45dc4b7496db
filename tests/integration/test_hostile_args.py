"""Issue 24, the command line's share: every hostile argument or environment value gives one line
with the documented exit status (2 for usage, 1 for files, data and memory), writes nothing, and
the cheap checks come before torch is imported."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import REPO, tiny, train_tiny
from helpers import exit_code as _exit_code
from helpers import file_stamps as _snapshot

from pyro_vae.app import evaluate as evaluate_module
from pyro_vae.app.config import RunConfig
from pyro_vae.app.options import positive_int, seed_int
from pyro_vae.app.preflight import run_labels
from pyro_vae.cli import main
from pyro_vae.config.constraints import parse_device
from pyro_vae.config.train import FLOAT32_TINY, TrainConfig
from pyro_vae.data.datasets import default_data_dir, load_dataset
from pyro_vae.errors import ConfigError, DatasetUnavailableError
from pyro_vae.infer import distributed, memory
from pyro_vae.infer.memory import estimate_ais_memory
from pyro_vae.infer.training import resolve_device

TINY = tiny(hidden=8, latent_dim=2)
NO_USER = "~nosuchuser-pyro-vae-test"
GB = 10**9


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two evaluated runs, ``runs/a`` and ``runs/b`` (a copy), on the same test images."""
    root = tmp_path_factory.mktemp("hostile-args") / "runs"
    train_tiny(root, "a", TINY)
    assert main(["evaluate", str(root / "a"), "--num-samples", "2", "--quiet"]) == 0
    shutil.copytree(root / "a", root / "b")
    return root


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and lines, err
    assert lines[0].startswith("pyro-vae") and "error" in lines[0], err
    return err


def _refused(capsys, argv: list[str], code: int, words: str, unchanged: Path | None = None) -> str:
    """``argv`` exits with ``code`` and a message holding ``words``; ``unchanged`` (a run or a
    directory of runs) holds the same files afterwards."""
    before = _snapshot(unchanged) if unchanged is not None and unchanged.exists() else None
    capsys.readouterr()
    assert _exit_code(argv) == code
    err = _one_line_error(capsys)
    assert words in err, err
    if unchanged is not None:
        assert (_snapshot(unchanged) if unchanged.exists() else None) == before
    return err


# ------------------------------------------------------------------ compare
@pytest.mark.parametrize("names", [["a", "a"], ["a", "b", "a"], ["a", "./a"]])
def test_compare_refuses_a_run_named_twice(runs, capsys, monkeypatch, names):
    monkeypatch.chdir(runs)
    _refused(capsys, ["compare", *names], 2, "are the same run directory", runs)


def test_compare_refuses_a_run_and_a_link_to_it(runs, tmp_path, capsys):
    (tmp_path / "link").symlink_to(runs / "a")
    argv = ["compare", str(runs / "a"), str(tmp_path / "link")]
    _refused(capsys, argv, 2, "are the same run directory", runs)


def test_compare_tells_same_named_runs_apart_by_their_folders(runs, tmp_path, capsys):
    other = tmp_path / "backup"
    shutil.copytree(runs / "a", other / "a")
    capsys.readouterr()
    assert main(["compare", str(runs / "a"), str(other / "a"), str(runs / "b")]) == 0
    out = capsys.readouterr().out
    assert "runs/a" in out and "backup/a" in out and "(reference)" in out
    rows = [line.split()[0] for line in out.splitlines()[2:]]
    assert rows == ["runs/a", "backup/a", "b"]


def test_run_labels_use_the_fewest_path_components():
    assert run_labels(["/x/runs/a", "/x/runs/b"]) == ["a", "b"]
    assert run_labels(["/x/runs/a", "/y/runs/a", "/z/b"]) == ["x/runs/a", "y/runs/a", "b"]
    with pytest.raises(ConfigError, match="same run directory"):
        run_labels(["/x/a", "/x/./a"])


# ------------------------------------------------------------------ --device
BAD_DEVICES = ["cuda:\u0663", "cuda:\u00b2", "cuda:" + "1" + "0" * 20, "tpu", "", "cuda:128"]
BAD_DEVICES += ["cuda:-1", "CPU", " cpu", "cpu:0", "cuda:", "mps"]


@pytest.mark.parametrize("device", BAD_DEVICES)
@pytest.mark.parametrize("command", ["evaluate", "figures", "report"])
def test_a_bad_device_on_a_run_is_a_usage_error(runs, capsys, command, device):
    argv = [command, str(runs / "a"), "--device", device]
    _refused(capsys, argv, 2, "--device", runs / "a")


@pytest.mark.parametrize("device", BAD_DEVICES)
@pytest.mark.parametrize("command", ["train", "run"])
def test_a_bad_device_for_training_is_a_usage_error(tmp_path, capsys, command, device):
    argv = [command, *TINY, "--runs-dir", str(tmp_path / "new"), "--device", device]
    _refused(capsys, argv, 2, "--device")
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", ["figures", "report"])
def test_absent_cuda_is_said_as_such_not_as_a_corrupt_checkpoint(runs, capsys, command):
    _refused(capsys, [command, str(runs / "a"), "--device", "cuda:0"], 2, "CUDA is not available")


def test_device_names_are_parsed_strictly():
    assert parse_device("auto") == ("auto", None)
    assert parse_device("cuda:3") == ("cuda", 3)
    for name in BAD_DEVICES + [None, 3]:
        with pytest.raises(ConfigError, match="--device"):
            parse_device(name)
    with pytest.raises(ConfigError):
        resolve_device("cuda:\u0663")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    cfg = RunConfig()
    cfg.train.device = "cuda:\u00b2"  # a hand-edited config.json
    with pytest.raises(ConfigError, match="device"):
        cfg.validate()


# ------------------------------------------------------------------ numbers
HUGE = ["1" + "0" * 30, "1" + "0" * 400, str(2**63)]
NOT_INTEGERS = ["nan", "inf", "\u0663", "", "1_0", "0x10", "1e3", "\u00b2"]
INT_OPTIONS = [
    "--epochs",
    "--batch-size",
    "--latent-dim",
    "--hidden",
    "--particles",
    "--eval-particles",
    "--components",
    "--pseudo-inputs",
    "--flows",
    "--seed",
    "--kl-warmup",
]


@pytest.mark.parametrize("value", HUGE + NOT_INTEGERS + ["-1"])
@pytest.mark.parametrize("option", INT_OPTIONS)
def test_integer_options_of_train_refuse_what_is_no_count(tmp_path, capsys, option, value):
    argv = ["train", *TINY, "--runs-dir", str(tmp_path / "new"), option, value]
    _refused(capsys, argv, 2, option)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("value", ["1e400", "-1", "0", "nan", "inf", "-inf", "\u0663", ""])
@pytest.mark.parametrize("option", ["--lr", "--beta", "--sigma", "--min-sigma"])
def test_number_options_of_train_refuse_what_is_no_positive_number(tmp_path, capsys, option, value):
    argv = ["train", *TINY, "--runs-dir", str(tmp_path / "new"), option, value]
    _refused(capsys, argv, 2, option)
    assert not (tmp_path / "new").exists()


EVALUATE_COUNTS = ["--num-samples", "--steps", "--chains", "--leapfrog", "--bdmc"]
EVALUATE_VALUES = [(o, v) for o in EVALUATE_COUNTS for v in HUGE + NOT_INTEGERS + ["-1", "0"]]
EVALUATE_VALUES += [("--seed", v) for v in HUGE + NOT_INTEGERS + ["-1"]]


@pytest.mark.parametrize("option, value", EVALUATE_VALUES)
def test_integer_options_of_evaluate_refuse_what_is_no_count(runs, capsys, option, value):
    argv = ["evaluate", str(runs / "a"), option, value]
    _refused(capsys, argv, 2, option, runs / "a")


@pytest.mark.parametrize("value", HUGE + NOT_INTEGERS + ["0"])
@pytest.mark.parametrize("option", ["--num-samples", "--baseline-components"])
def test_integer_options_of_run_refuse_what_is_no_count(tmp_path, capsys, option, value):
    argv = ["run", *TINY, "--runs-dir", str(tmp_path / "new"), option, value]
    _refused(capsys, argv, 2, option)
    assert not (tmp_path / "new").exists()


def test_the_largest_seed_and_counts_are_accepted():
    assert seed_int(str(2**63 - 1)) == 2**63 - 1
    assert positive_int("+7") == 7


@pytest.mark.parametrize("seed", [str(2**64), str(2**63), "-1"])
def test_evaluate_seed_out_of_range_is_a_usage_error(runs, capsys, seed):
    _refused(capsys, ["evaluate", str(runs / "a"), "--seed", seed], 2, "--seed", runs / "a")


# ------------------------------------------------------------------ the KL weight
@pytest.mark.parametrize(
    "args, words",
    [
        (["--beta", "5e-324"], "KL weight"),
        (["--beta", "1e-30", "--kl-warmup", "1000000000"], "KL weight"),
        (["--beta", "1e-300", "--kl-warmup", "2"], "KL weight"),
        (["--kl-warmup", "1" + "0" * 400], "--kl-warmup"),
        (["--kl-warmup", "1e400"], "--kl-warmup"),
    ],
)
def test_a_kl_weight_that_underflows_is_refused(tmp_path, capsys, args, words):
    argv = ["train", *TINY, "--runs-dir", str(tmp_path / "new"), *args]
    _refused(capsys, argv, 2, words)
    assert not (tmp_path / "new").exists()


def test_the_kl_weight_floor_is_float32s_smallest_normal_number():
    assert FLOAT32_TINY == torch.finfo(torch.float32).tiny
    assert not TrainConfig(beta=1e-30).problems()
    assert not TrainConfig(beta=1.0, kl_warmup=10**30).problems()  # 1e-30 at first: fine
    assert TrainConfig(beta=1e-30, kl_warmup=10**9).problems()
    assert TrainConfig(beta=1.0, kl_warmup=10**400).problems()  # from a config.json


def test_a_gaussian_sigma_that_is_zero_in_float32_is_refused(tmp_path, capsys):
    argv = ["train", *TINY, "--runs-dir", str(tmp_path / "new"), "--likelihood", "gaussian"]
    _refused(capsys, [*argv, "--sigma", "1e-310"], 2, "sigma")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--flows", str(2**40)],
        ["--flows", str(2**63 - 1)],
        ["--guide-kwargs", json.dumps({"flows": 10**30})],
        ["--guide-kwargs", json.dumps({"flows": 1e9})],
    ],
)
def test_a_flow_count_that_would_hang_the_build_is_refused(tmp_path, capsys, args):
    argv = ["train", *TINY, "--runs-dir", str(tmp_path / "new"), "--guide", "flow", *args]
    _refused(capsys, argv, 2, "flows")
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------ paths and the environment
@pytest.mark.parametrize(
    "argv",
    [
        ["train", *TINY, "--data-dir", f"{NO_USER}/x"],
        ["run", *TINY, "--dataset", "mnist", "--data-dir", f"{NO_USER}/x"],
        ["datasets", "--data-dir", f"{NO_USER}/x"],
        ["train", *TINY, "--runs-dir", f"{NO_USER}/runs"],
        ["train", *TINY, "--runs-dir", ""],
        ["datasets", "--data-dir", "a\0b"],
    ],
)
def test_an_unusable_path_is_a_usage_error(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    _refused(capsys, argv, 2, "error", tmp_path)


def test_a_config_naming_a_missing_users_home_is_a_message():
    with pytest.raises(DatasetUnavailableError, match="no home directory"):
        load_dataset("mnist", f"{NO_USER}/x", download=False)


def test_pyro_vae_data_is_expanded_and_checked(monkeypatch, capsys):
    monkeypatch.setenv("PYRO_VAE_DATA", "~/pyro-vae-data")
    assert default_data_dir() == Path.home() / "pyro-vae-data"
    monkeypatch.setenv("PYRO_VAE_DATA", f"{NO_USER}/data")
    _refused(capsys, ["datasets"], 1, "PYRO_VAE_DATA")


@pytest.mark.parametrize("value", ["1e15", "1e400", "inf", "-1", "0", "\u0663", ""])
def test_a_bad_distributed_timeout_is_a_usage_error(runs, capsys, monkeypatch, value):
    monkeypatch.setenv(distributed.TIMEOUT_ENV, value)
    monkeypatch.setenv("RANK", "0")  # as torchrun starts process 0 of 2
    monkeypatch.setenv("WORLD_SIZE", "2")
    _refused(capsys, ["evaluate", str(runs / "a")], 2, distributed.TIMEOUT_ENV, runs / "a")


def test_the_longest_distributed_timeout_is_accepted(monkeypatch):
    monkeypatch.setenv(distributed.TIMEOUT_ENV, str(distributed.MAX_TIMEOUT_S))
    assert distributed.timeout_seconds() == distributed.MAX_TIMEOUT_S


@pytest.mark.parametrize("name, value", [("RANK", "\u0663"), ("WORLD_SIZE", "1" + "0" * 30)])
def test_bad_torchrun_variables_are_a_usage_error(runs, capsys, monkeypatch, name, value):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv(name, value)
    _refused(capsys, ["evaluate", str(runs / "a")], 2, name, runs / "a")


# ------------------------------------------------------------------ memory
@pytest.mark.parametrize(
    "args, words",
    [
        (["--method", "ais", "--chains", str(10**9)], "--chains 1000000000"),
        (["--method", "ais", "--steps", str(2 * 10**9)], "--steps 2000000000"),
        (["--bdmc", str(10**9)], "--bdmc 1000000000"),
        (["--bdmc", "100", "--num-samples", str(10**12)], "--num-samples"),
    ],
)
def test_ais_sizes_that_cannot_fit_are_refused_before_allocating(
    runs, capsys, monkeypatch, args, words
):
    monkeypatch.setattr(memory, "available_memory", lambda device: (16 * GB, "test limit"))
    argv = ["evaluate", str(runs / "a"), "--quiet", *args]
    err = _refused(capsys, argv, 2, "refused before allocating", runs / "a")
    assert words in err


def test_the_ais_estimate_counts_chains_steps_and_images():
    vae = torch.nn.Linear(4, 4)
    one = estimate_ais_memory(vae, 16, 2, num_steps=10, num_chains=8, num_images=100)
    more = estimate_ais_memory(vae, 16, 2, num_steps=10, num_chains=16, num_images=100)
    assert one.parts["AIS log-weights"] == 16 * 8 * 100
    assert more.parts["AIS log-weights"] == 2 * one.parts["AIS log-weights"]
    assert one.parts["AIS schedule"] == 32 * 11
    both = estimate_ais_memory(vae, 16, 2, 10, 8, 100, simulated=True)
    assert both.parts["AIS log-weights"] == 2 * one.parts["AIS log-weights"]
    assert both.total > one.total  # the log-weights are held, not one pass among others
    assert one.total >= one.parts["AIS log-weights"] + one.parts["AIS pass"]


def test_a_process_limit_is_seen_by_the_estimate(monkeypatch):
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    machine = memory._machine_memory()
    limit = (machine[0] if machine else 64 * GB) // 2
    with open("/proc/self/status") as f:
        used = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    if hard != resource.RLIM_INFINITY and hard < used + limit:
        pytest.skip("the hard limit is below what the test would set")
    resource.setrlimit(resource.RLIMIT_AS, (used + limit, hard))
    try:
        free, source = memory.available_memory("cpu")
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    assert "RLIMIT_AS" in source and free <= limit


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
            "memory: you tried to allocate 40000000000 bytes. Error code 12"
        ),
        MemoryError(),
        RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB"),
    ],
)
def test_an_allocation_the_estimate_missed_is_one_line(runs, capsys, monkeypatch, error):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(evaluate_module, "sharded_log_marginal", fail)
    _refused(capsys, ["evaluate", str(runs / "a"), "--quiet"], 1, "out of memory", runs / "a")


def test_other_runtime_errors_are_not_called_out_of_memory(runs, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(evaluate_module, "sharded_log_marginal", fail)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["evaluate", str(runs / "a"), "--quiet"])


# ------------------------------------------------------------------ before torch
PROBE = """
import sys, time
start = time.perf_counter()
from pyro_vae.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("CODE", code, "TORCH", "torch" in sys.modules, "SECONDS", time.perf_counter() - start)
"""


@pytest.mark.parametrize(
    "argv, code",
    [
        (["evaluate", "runs/missing"], 1),
        (["list", "missing/"], 2),
        (["figures", "runs/missing"], 1),
        (["report", "runs/missing"], 1),
        (["compare", "runs/missing", "runs/other"], 1),
        (["train", "--resume", "runs/missing"], 1),
        (["evaluate", "runs/missing", "--device", "tpu"], 2),
    ],
)
def test_a_missing_path_is_told_before_torch_is_imported(tmp_path, argv, code):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    words = proc.stdout.split()
    assert words[:4] == ["CODE", str(code), "TORCH", "False"], proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_compare_refuses_duplicates_before_torch(runs):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "compare", str(runs / "a"), str(runs / "a")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.split()[:4] == ["CODE", "2", "TORCH", "False"], proc.stdout + proc.stderr
    assert "same run directory" in proc.stderr


# ------------------------------------------------------------------ exports
def test_the_mixture_baselines_are_exported():
    import pyro_vae

    for name in ("GaussianMixture", "BernoulliMixture"):
        assert name in pyro_vae.__all__
        assert getattr(pyro_vae, name).__name__ == name
    x = torch.rand(50, 4)
    fitted = pyro_vae.GaussianMixture(2, seed=0).fit(x, "em", max_iter=5)
    assert fitted.log_prob(x).shape == (50,)


def test_json_config_round_trip_keeps_a_valid_device():
    cfg = RunConfig()
    cfg.train.device = "cuda:3"
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))).train.device == "cuda:3"
    cfg.validate()
