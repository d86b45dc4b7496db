import os
import pickle
import random

import pytest
import torch

from pyro_vae import CheckpointError, load_checkpoint, save_checkpoint
from pyro_vae.app.checkpoint import atomic_write_bytes, atomic_write_text


class _RunsCode:
    """Unpickling this object runs a shell command (what a crafted checkpoint does)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_round_trip_of_plain_state(tmp_path):
    state = {
        "model": {"w": torch.randn(3, 4)},
        "epoch": 7,
        "history": [{"a": 1.5}],
        "rng": {"python": (3, tuple(range(5)), None)},
    }
    save_checkpoint(tmp_path / "c.pt", state)
    back = load_checkpoint(tmp_path / "c.pt")
    assert back["epoch"] == 7 and back["history"] == [{"a": 1.5}]
    assert torch.equal(back["model"]["w"], state["model"]["w"])


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "model": _RunsCode(marker)}, path)
    with pytest.raises(CheckpointError, match="refused.*could run code"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_raw_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not marker.exists()


def test_truncated_and_garbage_checkpoints_are_refused(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"model": {"w": torch.randn(100, 100)}})
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)
    rng = random.Random(0)
    for i in range(200):  # random bytes, half of them dressed as a pickle (protocol 2 header)
        garbage = rng.randbytes(rng.randint(1, 4096))
        path.write_bytes(b"\x80\x02" + garbage if i % 2 else garbage)
        with pytest.raises(CheckpointError):
            load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_foreign_but_safe_file_is_not_taken_for_a_checkpoint(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a pyro-vae checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_a_failed_write_leaves_the_old_file_and_no_debris(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    atomic_write_text(path, "old")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"new" * 1000)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_a_failure_without_a_message_still_gets_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"w": torch.zeros(2)})

    def fail(*args, **kwargs):
        raise IndexError  # what torch's unpickler raises on some garbage, with no message

    monkeypatch.setattr(torch, "load", fail)
    with pytest.raises(CheckpointError, match=r"corrupt or truncated checkpoint \(IndexError\)"):
        load_checkpoint(path)
