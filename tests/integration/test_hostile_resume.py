"""Issue 24's data-loss, memory-corruption and memory attempts: nothing a user made is deleted
by a mismatch, a resume from a crafted checkpoint changes nothing and never reaches the fused
optimizer, run tensor files are checked before use, and IDX reads cost about the decoded size."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers import REPO, tiny, train_tiny
from helpers import exit_code as _exit_code

from pyro_vae.app.runs import STALE_MARKER
from pyro_vae.cli import main
from pyro_vae.data.datasets import IDX_FILES, load_dataset
from pyro_vae.data.idx import write_idx
from pyro_vae.errors import CheckpointError, ConfigError, DataFormatError
from pyro_vae.infer.resume import check_optimizer_state, sanitized_optimizer_state
from pyro_vae.infer.training import make_optimizer
from pyro_vae.jobs.run import trained_run

TINY = tiny()
RESUME = ["train", "--resume", "{run}", "--epochs", "2", "--quiet"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _snapshot(run: Path) -> dict[str, bytes]:
    """Every file of a run (but its lock), with its bytes."""
    return {
        str(p.relative_to(run)): p.read_bytes()
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A one-epoch run (train only)."""
    return train_tiny(tmp_path_factory.mktemp("trained"), "base", TINY)


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> Path:
    """A one-epoch run with everything ``pyro-vae run`` derives (evaluation points, baseline
    mixtures, autoencoder, figures, report)."""
    root = tmp_path_factory.mktemp("full")
    argv = ["run", *TINY, "--num-samples", "10", "--baseline-components", "2"]
    assert main([*argv, "--runs-dir", str(root), "--name", "full"]) == 0
    return root / "full"


def _copy(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / run.name
    shutil.copytree(run, target)
    return target


# ------------------------------------------------------------------ A: nothing is deleted


def _tiny_cfg(**train):
    from pyro_vae import RunConfig

    cfg = RunConfig()
    cfg.model.hidden, cfg.model.latent_dim = [16], 3
    cfg.train.epochs = 1
    for key, value in train.items():
        setattr(cfg.train, key, value)
    return cfg


def test_trained_run_refuses_a_run_with_other_settings_and_keeps_it(tmp_path):
    run, _, _ = trained_run(_tiny_cfg(), tmp_path, "mine", progress=False)
    run = run.path
    (run / "notes.txt").write_text("my notes")
    before = _snapshot(run)
    with pytest.raises(ConfigError) as info:
        trained_run(_tiny_cfg(seed=7), tmp_path, "mine", progress=False)
    message = str(info.value)
    assert str(run) in message and "train.seed: there 0, here 7" in message
    assert "never deletes" in message and "\n" not in message
    assert _snapshot(run) == before


@pytest.mark.parametrize("what", ["file", "link", "directory without a run"])
def test_trained_run_refuses_what_is_in_the_way(tmp_path, what):
    path = tmp_path / "name"
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    if what == "file":
        path.write_text("mine")
    elif what == "link":
        path.symlink_to(target)
    else:
        path.mkdir()
        (path / "thesis.tex").write_text("mine")
    with pytest.raises(ConfigError, match="never deletes"):
        trained_run(_tiny_cfg(), tmp_path, "name", progress=False)
    assert os.path.lexists(path) and target.read_text() == "keep"
    assert what != "directory without a run" or (path / "thesis.tex").read_text() == "mine"


def test_trained_run_reuses_its_own_run_and_fills_an_empty_directory(tmp_path):
    (tmp_path / "r").mkdir()  # empty: a script stopped before its first write
    run, _, metrics = trained_run(_tiny_cfg(), tmp_path, "r", progress=False)
    assert run.path == tmp_path / "r" and len(metrics) == 1
    (run.path / "notes.txt").write_text("kept")
    before = _snapshot(run.path)
    again, _, metrics_again = trained_run(_tiny_cfg(), tmp_path, "r", progress=False)
    assert again.path == run.path and metrics_again == metrics
    assert _snapshot(run.path) == before  # reused as it is: nothing retrained or removed


def test_the_interpolation_script_keeps_a_users_run_of_the_same_name(tmp_path, trained):
    runs = tmp_path / "runs"
    runs.mkdir()
    user_run = _copy(trained, runs)
    user_run = user_run.rename(runs / "digits-vae")
    (user_run / "notes.txt").write_text("three weeks of notes")
    before = _snapshot(user_run)
    script = REPO / "experiments" / "interpolation.py"
    cmd = [sys.executable, str(script), "--runs-dir", str(runs), "--epochs", "1", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{user_run} holds a run with other settings" in done.stderr
    assert _snapshot(user_run) == before


def _marker_directory(marker: Path) -> None:
    marker.mkdir()


def _marker_link(marker: Path) -> None:
    marker.symlink_to(marker.parent / "metrics.jsonl")


def _marker_garbled(marker: Path) -> None:
    marker.write_bytes(b"\xff{not json")


def _marker_wrong_epoch(marker: Path) -> None:
    marker.write_text(json.dumps({"epoch": "zero"}))


@pytest.mark.parametrize(
    "plant", [_marker_directory, _marker_link, _marker_garbled, _marker_wrong_epoch]
)
def test_a_marker_pyro_vae_did_not_write_deletes_nothing(tmp_path, full, capsys, plant):
    run = _copy(full, tmp_path)
    plant(run / STALE_MARKER)
    before = _snapshot(run)
    capsys.readouterr()
    assert _exit_code(["evaluate", str(run), "--num-samples", "5", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and STALE_MARKER in err and "nothing was removed" in err
    assert _snapshot(run) == before
    for name in ("evaluation.json", "baseline.json", "autoencoder.pt", "report.md", "figures"):
        assert (run / name).exists(), name


def test_a_marker_pyro_vae_wrote_still_settles_a_crash(tmp_path, full, capsys):
    """The regular marker of a crash between a new checkpoint and the removal still works:
    it describes an epoch the checkpoint no longer holds, so the derived files go."""
    run = _copy(full, tmp_path)
    (run / STALE_MARKER).write_text(json.dumps({"epoch": 0}))
    assert _exit_code(["report", str(run), "--no-figures"]) == 0
    assert not (run / STALE_MARKER).exists() and not (run / "baseline.json").exists()


# ------------------------------------------------------------------ B: transactional resume


def _edit_checkpoint(run: Path, fn: Callable[[dict], None]) -> None:
    path = run / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    fn(state)
    torch.save(state, path)


def _moments(shape_of: Callable[[torch.Tensor], tuple[int, ...]]) -> Callable[[dict], None]:
    def edit(state: dict) -> None:
        for moments in state["optimizer"]["state"].values():
            for key in ("exp_avg", "exp_avg_sq"):
                moments[key] = torch.zeros(shape_of(moments[key]))

    return edit


def _set(path: tuple, value) -> Callable[[dict], None]:
    def edit(state: dict) -> None:
        target = state
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return edit


def _infinite_moment(state: dict) -> None:
    moments = state["optimizer"]["state"][0]
    moments["exp_avg"] = torch.full_like(moments["exp_avg"], float("inf"))


CRAFTED_RESUMES = [
    ("optimizer missing", _set(("optimizer",), KeyError), "optimizer state is missing"),
    ("optimizer garbage", _set(("optimizer",), "garbage"), "optimizer state is missing"),
    ("no param groups", _set(("optimizer", "param_groups"), []), "parameter group"),
    ("step a string", _set(("optimizer", "state", 0, "step"), "x"), "step of parameter 0"),
    ("step NaN", _set(("optimizer", "state", 0, "step"), torch.tensor(float("nan"))), "step"),
    ("moment infinite", _infinite_moment, "NaN, infinite"),
    ("lr NaN", _set(("optimizer", "param_groups", 0, "lr"), float("nan")), "lr"),
    ("unknown param", _set(("optimizer", "state", 99), {}), "unknown parameter 99"),
    ("rng garbage", _set(("rng",), "garbage"), "random-number state"),
    ("rng torch short", _set(("rng", "torch"), torch.zeros(3, dtype=torch.uint8)), "torch"),
    ("rng python", _set(("rng", "python"), (3, (1,) * 10, None)), "Python random"),
    ("rng numpy pos", _set(("rng", "numpy", 2), 10**6), "NumPy random"),
    ("history garbage", _set(("history",), [{"epoch": "x"}]), "history"),
    ("history short", _set(("history",), []), "history must list the 1"),
    ("history NaN", _set(("history", 0, "val_elbo"), float("nan")), "val_elbo is nan"),
    ("steps negative", _set(("steps",), -1), "steps must be"),
]


@pytest.mark.parametrize("what, edit, words", CRAFTED_RESUMES, ids=[c[0] for c in CRAFTED_RESUMES])
def test_a_resume_from_a_crafted_checkpoint_changes_nothing(
    tmp_path, trained, capsys, what, edit, words
):
    run = _copy(trained, tmp_path)
    _edit_checkpoint(run, edit)
    before = _snapshot(run)
    capsys.readouterr()
    assert _exit_code([a.format(run=run) for a in RESUME]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and words in err and "nothing was changed" in err, err
    assert _snapshot(run) == before  # config.json, metrics and checkpoint as they were


@pytest.mark.parametrize(
    "what, shape_of",
    [("wrong shape", lambda t: (t.shape[0] + 3,)), ("one element", lambda t: (1,))],
)
def test_crafted_adam_moments_are_refused_before_the_fused_optimizer(
    tmp_path, trained, what, shape_of
):
    """Once a glibc abort (wrong shapes) and a segmentation fault (one element): run in a
    subprocess, so that a regression crashes it, not the test session."""
    run = _copy(trained, tmp_path)
    _edit_checkpoint(run, _moments(shape_of))
    before = _snapshot(run)
    cmd = [sys.executable, "-m", "pyro_vae", *[a.format(run=run) for a in RESUME]]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert "exp_avg of parameter" in done.stderr and "Traceback" not in done.stderr
    assert _snapshot(run) == before


def test_the_optimizer_state_is_checked_against_each_parameter():
    params = [torch.nn.Parameter(torch.zeros(4, 3)), torch.nn.Parameter(torch.zeros(3))]
    optimizer = make_optimizer(params, 1e-3)
    params[0].grad, params[1].grad = torch.ones(4, 3), torch.ones(3)
    optimizer.step()
    saved = optimizer.state_dict()
    check_optimizer_state(saved, make_optimizer(params, 1e-3), "f")  # its own state fits
    saved["state"][1]["exp_avg_sq"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"exp_avg_sq of parameter 1 is torch.float32 \(1,\)"):
        check_optimizer_state(saved, make_optimizer(params, 1e-3), "f")
    saved["state"][1]["exp_avg_sq"] = torch.zeros(1).expand(3)  # three values, one stored
    with pytest.raises(CheckpointError, match="an expanded tensor"):
        check_optimizer_state(saved, make_optimizer(params, 1e-3), "f")


def test_the_running_optimizer_keeps_its_own_flags():
    params = [torch.nn.Parameter(torch.zeros(3))]
    running = make_optimizer(params, 1e-3)
    saved = running.state_dict()
    saved["param_groups"][0].update(amsgrad=True, fused=False, foreach=True, maximize=True)
    check_optimizer_state(saved, running, "f")
    group = sanitized_optimizer_state(saved, running)["param_groups"][0]
    mine = running.param_groups[0]
    for flag in ("amsgrad", "fused", "foreach", "maximize"):
        assert group[flag] == mine[flag], flag


# ------------------------------------------------------------------ C: other run files


def _pop_first_weight(state: dict) -> None:
    state["model"].pop(next(iter(state["model"])))


def _misfit_first_weight(state: dict) -> None:
    state["model"][next(iter(state["model"]))] = torch.zeros(2, 2)


def _mixture(state: dict) -> dict:
    return state["mixtures"][0]


def _expanded_points(state: dict) -> None:
    state["log_px"] = torch.zeros(1).expand(10**10)  # 40 GB if anything touched it whole


def _nan_points(state: dict) -> None:
    state["log_px"] = torch.full_like(state["log_px"], float("nan"))


POINTS = "evaluation_is-K10_points.pt"
FIGURES = ["figures", "{run}"]
COMPARE = ["compare", "{run}", "{full}"]
CRAFTED_FILES = [
    ("autoencoder key missing", "autoencoder.pt", _pop_first_weight, FIGURES, "is missing"),
    ("autoencoder wrong shape", "autoencoder.pt", _misfit_first_weight, FIGURES, "(2, 2)"),
    ("autoencoder no binary", "autoencoder.pt", lambda s: s.pop("binary"), FIGURES, "binary"),
    ("mixture weights missing", "baseline_mixtures.pt", lambda s: _mixture(s).pop("weights"),
     FIGURES, "weights"),
    ("mixture over 3 pixels", "baseline_mixtures.pt",
     lambda s: _mixture(s).update(probs=torch.full((2, 3), 0.5, dtype=torch.float64)),
     FIGURES, "not over 64 data dimensions"),
    ("mixture probs of 1", "baseline_mixtures.pt",
     lambda s: _mixture(s)["probs"].fill_(1.0), FIGURES, "strictly in (0, 1)"),
    ("mixture best absent", "baseline_mixtures.pt", lambda s: s.update(best=99), FIGURES,
     "best mixture (99)"),
    ("mixture options", "baseline_mixtures.pt",
     lambda s: _mixture(s)["options"].update(bogus=1), FIGURES, "options are invalid"),
    ("points expanded 1e10", POINTS, _expanded_points, COMPARE, "holds 10000000000 values"),
    ("points all NaN", POINTS, _nan_points, COMPARE, "are NaN"),
]  # fmt: skip


@pytest.mark.parametrize(
    "what, name, edit, command, words", CRAFTED_FILES, ids=[c[0] for c in CRAFTED_FILES]
)
def test_crafted_run_tensor_files_give_one_line(
    tmp_path, full, capsys, what, name, edit, command, words
):
    run = _copy(full, tmp_path)
    path = run / name
    state = torch.load(path, weights_only=True)
    edit(state)
    torch.save(state, path)
    capsys.readouterr()
    assert _exit_code([a.format(run=run, full=full) for a in command]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("pyro-vae") and words in err, err
    assert err.count("\n") == 1 and name in err


@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_a_saved_gaussian_mixture_passes_its_checks_and_a_crafted_one_does_not(covariance):
    """The checks accept what a fit saves (a Cholesky factor is column-major, not
    contiguous) and refuse a scale_tril that is not a Cholesky factor."""
    from pyro_vae.app.run_tensors import mixture_from_state
    from pyro_vae.model.mixtures import GaussianMixture

    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fitted = GaussianMixture(3, covariance, seed=0).fit(x)
    state = fitted.state_dict()
    assert torch.equal(mixture_from_state(state, Path("f"), 2).log_prob(x), fitted.log_prob(x))
    with pytest.raises(CheckpointError, match="not over 3 data dimensions"):
        mixture_from_state(state, Path("f"), 3)
    if covariance == "full":
        state["scale_tril"] = -state["scale_tril"]
        with pytest.raises(CheckpointError, match="positive diagonal"):
            mixture_from_state(state, Path("f"), 2)


# ------------------------------------------------------------------ D: IDX memory

_MEASURE = textwrap.dedent(
    """
    import resource, sys, tracemalloc
    from pyro_vae.data.idx import read_idx
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    images = read_idx(sys.argv[1])
    peak = tracemalloc.get_traced_memory()[1]
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(images.numel() * images.element_size(), peak, after - before)
    """
)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_an_honest_idx_gzip_costs_about_its_decoded_size(tmp_path, dtype):
    """A few hundred kilobytes that inflate to 64 MB, exactly as the header says: read with
    about 64 MB of memory (it took 2.1x that, the data copied twice), in native byte order."""
    n = (64 << 20) // (28 * 28 * torch.tensor([], dtype=dtype).element_size())
    images = torch.zeros(n, 28, 28, dtype=dtype)
    images[0, 0, :4] = torch.tensor([1, 2, 3, 250], dtype=dtype)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, images)
    assert path.stat().st_size < 1 << 20
    del images
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    decoded, peak, resident = map(int, done.stdout.split())
    assert decoded == n * 28 * 28 * torch.tensor([], dtype=dtype).element_size()
    assert peak < 1.05 * decoded + (12 << 20), (peak, decoded)  # a few 4 MB chunks at most
    assert resident < 1.25 * decoded + (32 << 20), (resident, decoded)


def test_idx_values_survive_the_in_place_byte_swap(tmp_path):
    from pyro_vae.data.idx import read_idx

    for dtype in (torch.int16, torch.int32, torch.float32, torch.float64, torch.uint8):
        tensor = (torch.arange(24) * 37 - 300).to(dtype).reshape(2, 3, 4)
        if dtype == torch.uint8:
            tensor = torch.arange(24, dtype=dtype).reshape(2, 3, 4)
        write_idx(tmp_path / "a.idx", tensor)
        read = read_idx(tmp_path / "a.idx")
        assert read.dtype == dtype and torch.equal(read, tensor), dtype


def test_images_of_zero_by_zero_pixels_are_refused(tmp_path, capsys):
    for key, stem in IDX_FILES.items():
        if key.endswith("images"):
            write_idx(tmp_path / stem, torch.zeros(5, 0, 0, dtype=torch.uint8))
        else:
            write_idx(tmp_path / stem, torch.zeros(5, dtype=torch.uint8))
    with pytest.raises(DataFormatError, match="0x0 pixels"):
        load_dataset("mnist", tmp_path, download=False)
    argv = ["train", *TINY, "--dataset", "mnist", "--data-dir", str(tmp_path), "--no-download"]
    assert _exit_code([*argv, "--runs-dir", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "at least one pixel" in err
