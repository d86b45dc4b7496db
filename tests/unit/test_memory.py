"""Sizes that cannot fit in memory are refused before anything is allocated, with the estimate
and the limit in one message, and no run directory left behind."""

from __future__ import annotations

import pytest
import torch

from pyro_vae import RunConfig, build_vae
from pyro_vae.cli import main
from pyro_vae.infer import memory
from pyro_vae.infer.memory import check_memory, estimate_memory, format_bytes

GB = 10**9


def _meta_vae(latent: int = 3, hidden: list[int] | None = None, data_dim: int = 64):
    cfg = RunConfig()
    cfg.model.latent_dim, cfg.model.hidden = latent, hidden or [16]
    cfg.model.prior = "normal"  # no prior parameters in the counts below
    with torch.device("meta"):
        return build_vae(cfg.model, data_dim, "dynamic")


def test_the_estimate_counts_parameters_and_scales_with_particles_and_samples():
    vae = _meta_vae()
    params = sum(p.numel() for p in vae.parameters())
    # 64-16-(3+3) encoder and 3-16-64 decoder
    assert params == (64 * 16 + 16) + (16 * 6 + 6) + (3 * 16 + 16) + (16 * 64 + 64)
    one = estimate_memory(vae, 64, 3, batch_size=128, particles=1, num_val=300)
    assert one.parts["parameters"] == 16 * params  # weights, gradients, Adam's two moments
    # widths: encoder 16 + 6 (+ data 64); decoder 16 + 64 (+ data 64, z and its noise 2 x 3)
    a_enc, a_dec = 16 + 6 + 64, 16 + 64 + 64 + 6
    assert one.parts["training step"] == 3 * 4 * 128 * (a_enc + a_dec)
    many = estimate_memory(vae, 64, 3, batch_size=128, particles=1001, num_val=300)
    assert many.parts["training step"] - one.parts["training step"] == 3 * 4 * 128 * 1000 * a_dec
    assert "log p(x) evaluation" not in one.parts
    k1 = estimate_memory(vae, 64, 3, 128, num_samples=1000, num_test=300)
    k2 = estimate_memory(vae, 64, 3, 128, num_samples=2000, num_test=300)
    step = k2.parts["log p(x) evaluation"] - k1.parts["log p(x) evaluation"]
    assert step == memory.LOG_WEIGHT_BYTES * 1000 * 100  # K log-weights of 100 images
    # the passes run one at a time: the total is the fixed parts plus the largest pass
    fixed = k2.parts["parameters"] + k2.parts["data"]
    passes = [v for k, v in k2.parts.items() if k not in ("parameters", "data")]
    assert k2.total == fixed + max(passes)


def test_the_estimate_grows_with_the_latent_size_on_meta_without_allocating():
    small = estimate_memory(_meta_vae(latent=20, hidden=[400]), 64, 20, 128)
    huge_vae = _meta_vae(latent=1_000_000, hidden=[400])  # 1.2e9 parameters, on meta: free
    huge = estimate_memory(huge_vae, 64, 1_000_000, 128)
    assert huge.parts["parameters"] > 15 * GB > small.total
    assert huge.largest() in ("parameters", "validation ELBO")


def test_check_memory_names_the_estimate_the_limit_and_the_largest_part(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda device: (8 * GB, "test limit"))
    est = memory.MemoryEstimate(
        {"parameters": 3 * GB, "data": GB, "training step": 5 * GB},
        {"training step": "--particles"},
    )
    with pytest.raises(memory.InsufficientMemoryError) as info:
        check_memory(est, "cpu")
    text = str(info.value)
    assert "9.0 GB" in text and "8.0 GB" in text and "test limit" in text
    assert "training step (--particles)" in text
    check_memory(memory.MemoryEstimate({"parameters": 7 * GB}), "cpu")  # fits: no error


def test_available_memory_reads_the_machine():
    free = memory.available_memory("cpu")
    if free is None:
        pytest.skip("neither psutil nor /proc/meminfo here")
    assert free[0] > 0 and isinstance(free[1], str)
    assert format_bytes(1_500_000) == "1.5 MB" and format_bytes(12) == "12 bytes"


@pytest.mark.parametrize(
    "args, largest",
    [
        (["--latent-dim", "1000000"], "validation ELBO"),
        (["--hidden", "1000000", "1000000"], "parameters"),
        (["--particles", "1000000"], "training step"),
        (["--eval-particles", "1000000"], "validation ELBO"),
        (["--num-samples", "1000000000"], "log p(x) evaluation"),
    ],
)
def test_sizes_that_cannot_fit_are_refused_before_a_run_exists(
    tmp_path, capsys, monkeypatch, args, largest
):
    monkeypatch.setattr(memory, "available_memory", lambda device: (16 * GB, "MemAvailable"))
    command = "run" if args[0] == "--num-samples" else "train"
    with pytest.raises(SystemExit) as info:
        main([command, "--quiet", "--runs-dir", str(tmp_path / "runs"), "--name", "r", *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "would need about" in err and "16.0 GB is free" in err
    assert f"the {largest} (" in err
    assert not (tmp_path / "runs" / "r").exists()
