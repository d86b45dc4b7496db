"""--tensorboard: the event file holds metrics.jsonl's scalars per epoch; without the package the
option is refused before a run directory exists; only rank 0 of a distributed run writes."""

import json
import sys

import pytest
from helpers import tiny

from pyro_vae.cli import main

TINY = tiny(epochs=3, hidden=32, latent_dim=4, eval_particles=2)


def scalars(directory) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def metrics(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_the_event_file_holds_each_epochs_metrics(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    args = ["--runs-dir", str(tmp_path), "--name", "tb", "--tensorboard"]
    assert main(["train", *TINY, *args]) == 0
    run = tmp_path / "tb"
    logged, lines = scalars(run / "tensorboard"), metrics(run)
    assert "test_elbo" not in logged  # null in metrics.jsonl (not monitored): not a scalar
    expected = {k for k, v in lines[0].items() if k != "epoch" and v is not None}
    assert set(logged) == expected >= {"train_objective", "val_elbo", "kl_weight"}
    for tag, points in logged.items():
        assert [step for step, _ in points] == [1, 2, 3], tag
        values = [value for _, value in points]
        assert values == pytest.approx([m[tag] for m in lines], rel=1e-6), tag

    # a resumed run adds its new epochs to the same directory
    assert main(["train", "--resume", str(run), "--epochs", "5", "--quiet", "--tensorboard"]) == 0
    logged, lines = scalars(run / "tensorboard"), metrics(run)
    assert [step for step, _ in logged["val_elbo"]] == [1, 2, 3, 4, 5]
    assert [v for _, v in logged["val_elbo"]] == pytest.approx([m["val_elbo"] for m in lines])


@pytest.mark.parametrize("command", ["train", "run"])
def test_without_the_package_the_option_is_refused_before_a_run_exists(
    command, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(SystemExit) as info:
        main([command, *TINY, "--runs-dir", str(tmp_path), "--name", "x", "--tensorboard"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err
    assert "--tensorboard needs the tensorboard package" in err and "pip install" in err
    assert not (tmp_path / "x").exists()


def test_a_link_in_place_of_the_directory_is_refused(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    assert main(["train", *TINY, "--runs-dir", str(tmp_path), "--name", "ln"]) == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "ln" / "tensorboard").symlink_to(outside)
    args = ["--resume", str(tmp_path / "ln"), "--epochs", "4", "--quiet", "--tensorboard"]
    assert main(["train", *args]) == 1
    assert "symbolic link" in capsys.readouterr().err
    assert list(outside.iterdir()) == []


def test_a_resume_goes_on_logging_where_the_run_logged_before(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    args = ["--runs-dir", str(tmp_path), "--name", "tb", "--tensorboard"]
    assert main(["train", *TINY, *args]) == 0
    run = tmp_path / "tb"
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "5", "--quiet"]) == 0  # no option
    assert f"the resumed epochs are logged to {run / 'tensorboard'}" in capsys.readouterr().err
    assert [step for step, _ in scalars(run / "tensorboard")["val_elbo"]] == [1, 2, 3, 4, 5]


def test_without_the_package_a_resume_says_its_epochs_are_not_logged(tmp_path, monkeypatch, capsys):
    pytest.importorskip("tensorboard")
    args = ["--runs-dir", str(tmp_path), "--name", "tb", "--tensorboard"]
    assert main(["train", *TINY, *args]) == 0
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "tb"), "--epochs", "4", "--quiet"]) == 0
    assert "the epochs of this resume are not logged there" in capsys.readouterr().err


def test_a_run_that_never_logged_does_not_start_on_resume(tmp_path, capsys):
    assert main(["train", *TINY, "--runs-dir", str(tmp_path), "--name", "plain"]) == 0
    assert main(["train", "--resume", str(tmp_path / "plain"), "--epochs", "4", "--quiet"]) == 0
    assert not (tmp_path / "plain" / "tensorboard").exists()
    assert "TensorBoard" not in capsys.readouterr().err
