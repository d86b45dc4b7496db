"""Writing a run directory is safe: no write outside it through a planted link, no derived file
lost while it still describes the checkpoint, no run directory shared by two processes."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path

import pytest
from helpers import tiny, train_tiny

from pyro_vae import RunDirectory, load_checkpoint
from pyro_vae.app import runs as runs_module
from pyro_vae.cli import main
from pyro_vae.errors import ConfigError, RunInUseError

TINY = tiny(epochs=2)
IN_USE = "is in use: another pyro-vae process is writing it"


def _train_tiny(root: Path, name: str = "r", *extra: str) -> Path:
    return train_tiny(root, name, TINY, *extra)


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return _train_tiny(tmp_path / "runs")


def _hold_lock(run: Path) -> int:
    """Lock ``run`` as another writer would (a descriptor of its own: flock conflicts)."""
    fd = os.open(run / ".lock", os.O_RDONLY | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


# --------------------------------------------------------------------------- links


def test_a_planted_link_at_a_temporary_or_final_name_is_never_written_through(
    tmp_path, run_dir, capsys
):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    figures = run_dir / "figures"
    figures.mkdir()
    # the fixed temporary name the figure writer used, pointing at a file and at nothing
    (figures / ".samples.tmp.png").symlink_to(victim)
    (figures / ".reconstructions.tmp.png").symlink_to(tmp_path / "created-through-a-link")
    # final targets that are links: replaced, not written through
    (figures / "manifold.png").symlink_to(victim)
    (run_dir / "evaluation.json").symlink_to(victim)
    assert main(["figures", str(run_dir)]) == 0
    assert main(["evaluate", str(run_dir), "--num-samples", "5", "--quiet"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert victim.read_bytes() == b"precious"
    assert not os.path.lexists(tmp_path / "created-through-a-link")
    for name in ("figures/manifold.png", "figures/samples.png", "evaluation.json"):
        assert not (run_dir / name).is_symlink() and (run_dir / name).stat().st_size > 0, name
    debris = [p.name for p in [*run_dir.iterdir(), *figures.iterdir()] if p.name.endswith(".tmp")]
    assert debris == []


def test_a_symlinked_figures_directory_is_refused_never_written_through(tmp_path, run_dir, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    (run_dir / "figures").symlink_to(elsewhere, target_is_directory=True)
    assert main(["figures", str(run_dir)]) == 1
    err = capsys.readouterr().err
    assert "symbolic link" in err and f"rm {run_dir / 'figures'}" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.txt"]

    # a resume that trains removes what described the old model: the link, never its target
    (run_dir / "report.md").write_text("# the old model\n")
    assert main(["train", "--resume", str(run_dir), "--epochs", "3", "--quiet"]) == 0
    assert not os.path.lexists(run_dir / "figures") and not (run_dir / "report.md").exists()
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.txt"]


def test_a_planted_link_at_the_lock_file_is_refused(tmp_path, run_dir, capsys):
    target = tmp_path / "created-through-the-lock"
    (run_dir / ".lock").unlink(missing_ok=True)
    (run_dir / ".lock").symlink_to(target)
    assert main(["figures", str(run_dir)]) == 1
    err = capsys.readouterr().err
    assert "symbolic link" in err and "Traceback" not in err
    assert not os.path.lexists(target)


def test_a_file_that_cannot_be_written_is_an_error_not_a_traceback(run_dir, capsys):
    (run_dir / "report.md").mkdir()  # in the way of the report
    assert main(["report", str(run_dir), "--no-figures"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "report.md" in err and "run the command again" in err


# ------------------------------------------------------------------- one writer per run


def test_two_simultaneous_creations_of_one_name_exactly_one_wins(tmp_path):
    for trial in range(40):
        barrier = threading.Barrier(4)
        outcomes: list[object] = []

        def create(trial=trial, barrier=barrier, outcomes=outcomes):
            barrier.wait()
            try:
                outcomes.append(RunDirectory.create(tmp_path, f"same-{trial}"))
            except ConfigError as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=create) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [o for o in outcomes if isinstance(o, RunDirectory)]
        assert len(winners) == 1, trial
        losers = [o for o in outcomes if isinstance(o, ConfigError)]
        assert len(losers) == 3 and "already holds a run" in str(losers[0])


def test_simultaneous_default_names_are_all_distinct(tmp_path):
    barrier = threading.Barrier(6)
    paths: list[Path] = []

    def create():
        barrier.wait()
        paths.append(RunDirectory.create(tmp_path).path)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(paths)) == 6 and all(p.is_dir() for p in paths)


def test_a_second_writer_on_a_locked_run_is_refused(run_dir, capsys):
    fd = _hold_lock(run_dir)
    try:
        before = (run_dir / "checkpoint.pt").read_bytes()
        for argv in (
            ["train", "--resume", str(run_dir), "--epochs", "3", "--quiet"],
            ["figures", str(run_dir)],
            ["report", str(run_dir)],
            ["evaluate", str(run_dir), "--num-samples", "5", "--quiet"],
        ):
            assert main(argv) == 1, argv
            err = capsys.readouterr().err
            assert f"pyro-vae: error: {run_dir} {IN_USE}" in err, err
            assert "run this command again" in err and "Traceback" not in err
        assert (run_dir / "checkpoint.pt").read_bytes() == before
        assert not (run_dir / "figures").exists() and not (run_dir / "report.md").exists()
    finally:
        os.close(fd)
    assert main(["train", "--resume", str(run_dir), "--epochs", "3", "--quiet"]) == 0


def test_the_lock_is_reentrant_and_released_on_every_way_out(run_dir):
    run = RunDirectory.open(run_dir)
    with pytest.raises(KeyboardInterrupt):
        with run.writing():
            with run.writing():  # the same thread again: fine
                run.write_json("notes.json", {})
            raise KeyboardInterrupt
    os.close(_hold_lock(run_dir))  # released: another writer gets it
    errors: list[BaseException] = []

    def other_thread():
        try:
            with run.writing():
                pass
        except RunInUseError as exc:
            errors.append(exc)

    with run.writing():  # another thread of this process is another writer
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
    assert len(errors) == 1 and IN_USE in str(errors[0])


# ------------------------------------------------------------------- derived files


def _plant_derived(run: Path) -> dict[str, bytes]:
    """Files derived from the model, as ``run`` and ``report`` leave them."""
    (run / "figures").mkdir(exist_ok=True)
    files = {
        "evaluation.json": b'{"log_px": -1.0}\n',
        "evaluation_val.json": b'{"log_px": -2.0}\n',
        "baseline.json": b"{}\n",
        "report.md": b"# report\n",
        "figures/samples.png": b"png",
    }
    for name, data in files.items():
        (run / name).write_bytes(data)
    return files


@pytest.mark.parametrize("replaced", [False, True])
def test_a_crash_between_marking_and_removing_derived_files_is_settled(run_dir, replaced):
    """The marker records the epoch the derived files describe; the next writer keeps them
    when that checkpoint is still on disk and removes them when a newer one replaced it."""
    files = _plant_derived(run_dir)
    epoch = load_checkpoint(run_dir / "checkpoint.pt")["epoch"]
    described = epoch - 1 if replaced else epoch
    (run_dir / runs_module.STALE_MARKER).write_text(json.dumps({"epoch": described}))
    with RunDirectory.open(run_dir).writing():
        pass
    assert not (run_dir / runs_module.STALE_MARKER).exists()
    for name, data in files.items():
        if replaced:
            assert not (run_dir / name).exists(), name
        else:
            assert (run_dir / name).read_bytes() == data, name
    assert not (run_dir / "figures").exists() if replaced else (run_dir / "figures").is_dir()


# --------------------------------------------------------------------------- orphans


def test_orphaned_temporary_files_are_removed_when_the_run_is_next_written(tmp_path, run_dir):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    (outside / ".x.abcdef12.tmp").write_text("not the run's")
    orphans = [run_dir / ".checkpoint.pt.deadbeef.tmp", run_dir / "figures" / ".s.png.0a1b2c3d.tmp"]
    (run_dir / "figures").mkdir(exist_ok=True)
    for path in orphans:
        path.write_bytes(b"half a file")
    link = run_dir / ".report.md.abcdef12.tmp"
    link.symlink_to(outside / "precious")  # a link at a temporary name: removed, not followed
    (run_dir / "linked").symlink_to(outside, target_is_directory=True)  # never entered
    kept = [run_dir / ".notes.tmp", run_dir / "mine.abcdef12.tmp", run_dir / ".a.b.short.tmp"]
    for path in kept:
        path.write_text("not a writer's temporary name")
    with RunDirectory(run_dir).writing():
        pass
    assert not any(os.path.lexists(p) for p in [*orphans, link])
    assert all(p.is_file() for p in kept)
    assert (outside / "precious").read_text() == "keep me"
    assert (outside / ".x.abcdef12.tmp").is_file()


def test_a_resume_cleans_what_a_killed_writer_left(run_dir, capsys):
    (run_dir / ".checkpoint.pt.0123abcd.tmp").write_bytes(b"torn")
    assert main(["train", "--resume", str(run_dir), "--epochs", "3", "--quiet"]) == 0
    assert not list(run_dir.rglob("*.tmp"))
