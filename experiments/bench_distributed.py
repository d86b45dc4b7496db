"""Benchmark: data-parallel training with several processes (torch.distributed, gloo on CPU).

For each number of processes (``--processes``), the script starts that many processes joined
into one gloo process group (as ``torchrun`` would), trains the pyro-vae ``Trainer`` on
``--dataset`` (default ``digits``: this machine's 2 cores are shared) with ``--threads`` torch
threads per process, and reports the median over ``--epochs`` timed epochs (after one warm-up
epoch) of the epoch time and training images per second, in two settings:

* ``same per-process batch``: every process takes ``--batch-size`` examples, so the global
  batch grows with the processes (fewer, larger steps per epoch: the usual way to scale out);
* ``same global batch``: the processes share ``--batch-size`` examples, so the optimization is
  the one-process one (same steps per epoch).

It also times one ``all_reduce`` of the gradient buffer (the bytes every step communicates)
and prints a paper estimate of the communication per step on 8 GPUs for the measured model and
for one with 100 times as many parameters, from an assumed all-reduce bus bandwidth and
latency (``--bus-gbs``, ``--latency-us``) and an assumed time per step of one GPU: a fixed
Python/Pyro cost (``--overhead-ms``) plus 6 x parameters x batch floating-point operations at
``--gpu-tflops``. A ring all-reduce moves 2 (W - 1) / W times the buffer through every GPU;
nothing here overlaps communication with computation.

    python experiments/bench_distributed.py [--processes 1 2] [--epochs 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist

from pyro_vae import ModelConfig, Trainer, build_vae, load_dataset
from pyro_vae.infer import distributed
from pyro_vae.infer.training import TrainConfig


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    p.add_argument("--dataset", default="digits")
    p.add_argument("--hidden", type=int, default=400)
    p.add_argument("--latent-dim", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=5, help="timed epochs (after one warm-up)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--repeats", type=int, default=3, help="round-robin rounds of all settings")
    p.add_argument("--reduce-repeats", type=int, default=50)
    p.add_argument("--bus-gbs", type=float, default=150.0, help="assumed all-reduce bus GB/s")
    p.add_argument("--latency-us", type=float, default=30.0, help="assumed all-reduce latency")
    p.add_argument(
        "--overhead-ms",
        type=float,
        default=2.0,
        help="assumed Python/Pyro cost per step on a GPU (README: effect handlers, ~2 ms)",
    )
    p.add_argument("--gpu-tflops", type=float, default=50.0, help="assumed sustained TFLOP/s")
    p.add_argument("--json", default=None, help="also write the results here")
    return p


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, args: argparse.Namespace, batch: int, out: str):
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(args.threads)
    group = distributed.init_from_environment("cpu") if world > 1 else distributed.SINGLE
    dataset = load_dataset(args.dataset, download=False)
    model = ModelConfig(hidden=[args.hidden], latent_dim=args.latent_dim)
    torch.manual_seed(0)
    vae = build_vae(model, dataset.data_dim)
    cfg = TrainConfig(epochs=args.epochs + 1, batch_size=batch, device="cpu", eval_particles=1)
    trainer = Trainer(vae, cfg, dataset, progress=False, group=group)
    times = []
    for _ in range(args.epochs + 1):
        start = time.perf_counter()
        trainer.train_epoch()
        times.append(time.perf_counter() - start)
    nbytes = distributed.communicated_bytes(vae.parameters())
    reduce_ms = None
    if group.active:
        buf = torch.zeros(nbytes // 4)
        dist.barrier()
        samples = []
        for _ in range(args.reduce_repeats):
            start = time.perf_counter()
            dist.all_reduce(buf)
            samples.append(time.perf_counter() - start)
        reduce_ms = 1000 * statistics.median(samples)
    if group.is_main:
        epoch_s = statistics.median(times[1:])
        result = {
            "processes": world,
            "per_process_batch": batch,
            "global_batch": batch * world,
            "steps_per_epoch": trainer.steps_per_epoch(),
            "epoch_s": epoch_s,
            "images_per_s": trainer.num_train / epoch_s,
            "bytes_per_step": nbytes,
            "all_reduce_ms": reduce_ms,
            "params": sum(p.numel() for p in vae.parameters()),
            "val_elbo": trainer.history[-1].val_elbo,
        }
        Path(out).write_text(json.dumps(result))
    distributed.shutdown()


def measure(args: argparse.Namespace, world: int, batch: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "result.json")
        torch.multiprocessing.spawn(
            _worker, args=(world, _free_port(), args, batch, out), nprocs=world
        )
        return json.loads(Path(out).read_text())


def estimate(nbytes: int, world: int, args: argparse.Namespace) -> float:
    """Milliseconds of one ring all-reduce of ``nbytes`` over ``world`` GPUs (paper model)."""
    moved = 2 * (world - 1) / world * nbytes
    return 2 * (world - 1) * args.latency_us / 1000 + 1000 * moved / (args.bus_gbs * 1e9)


def main() -> None:
    args = get_args_parser().parse_args()
    settings = []
    for world in args.processes:
        label = "same per-process batch" if world > 1 else "one process"
        settings.append((world, label, args.batch_size))
        if world > 1 and args.batch_size % world == 0:
            settings.append((world, "same global batch", args.batch_size // world))
    runs: list[list[dict]] = [[] for _ in settings]
    for _ in range(args.repeats):  # round-robin: a busy machine slows all settings alike
        for i, (world, label, batch) in enumerate(settings):
            row = measure(args, world, batch)
            row["setting"] = label
            runs[i].append(row)
            print(json.dumps(row), flush=True)
    rows = []
    for rounds in runs:
        epochs = sorted(r["epoch_s"] for r in rounds)
        row = dict(rounds[0], epoch_s=statistics.median(epochs), lo=epochs[0], hi=epochs[-1])
        row["images_per_s"] = row["images_per_s"] * rounds[0]["epoch_s"] / row["epoch_s"]
        reduces = [r["all_reduce_ms"] for r in rounds if r["all_reduce_ms"] is not None]
        row["all_reduce_ms"] = statistics.median(reduces) if reduces else None
        rows.append(row)
    base = rows[0]["images_per_s"]
    print(
        f"\n{args.dataset}, {args.hidden}-{args.latent_dim} MLP VAE, {args.threads} torch "
        f"thread(s) per process; epoch time: median over {args.repeats} rounds of each "
        f"round's median of {args.epochs} epochs (range over rounds):"
    )
    print(
        "| processes | setting | batch per process / global | steps / epoch | epoch s | "
        "images / s | vs 1 process | all_reduce ms / step |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        reduce = f"{r['all_reduce_ms']:.3f}" if r["all_reduce_ms"] is not None else "-"
        print(
            f"| {r['processes']} | {r['setting']} | {r['per_process_batch']} / "
            f"{r['global_batch']} | {r['steps_per_epoch']} | {r['epoch_s']:.3f} "
            f"({r['lo']:.3f}-{r['hi']:.3f}) | "
            f"{r['images_per_s']:,.0f} | {r['images_per_s'] / base:.2f}x | {reduce} |"
        )
    nbytes = rows[0]["bytes_per_step"]
    params = sum(p.numel() for p in _mnist_model().parameters())
    mnist = 4 * (params + 1)
    print(
        f"\nbytes all-reduced per step: {nbytes:,} here ({rows[0]['params']:,} parameters); "
        f"{mnist:,} for the 784-400-20 model"
    )
    print(
        f"\npaper estimate, 8 GPUs with batch {args.batch_size} each, ring all-reduce at "
        f"{args.bus_gbs:g} GB/s bus bandwidth and {args.latency_us:g} us per hop, a step of one "
        f"GPU = {args.overhead_ms:g} ms + 6 x parameters x batch FLOP at {args.gpu_tflops:g} "
        "TFLOP/s:"
    )
    print(
        "| model | bytes / step | 1-GPU step ms | all-reduce ms | 8-GPU step ms | "
        "images/s vs 1 GPU |"
    )
    print("|---|---|---|---|---|---|")
    for name, scale in (("784-400-20", 1), ("100x larger", 100)):
        flop = 6 * scale * params * args.batch_size
        compute = args.overhead_ms + 1000 * flop / (args.gpu_tflops * 1e12)
        comm = estimate(scale * mnist, 8, args)
        print(
            f"| {name} | {scale * mnist:,} | {compute:.2f} | {comm:.2f} | "
            f"{compute + comm:.2f} | {8 * compute / (compute + comm):.1f}x |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "runs": runs}, indent=2))


def _mnist_model() -> torch.nn.Module:
    with torch.device("meta"):
        return build_vae(ModelConfig(), 784)


if __name__ == "__main__":
    main()
