"""Training images/s with one process against N DDP processes: a check of the DDP path.

    python benchmarks/ddp_speed.py [--processes 1 2 4] [--size 256] [--steps 30] [--share-gpu]
    python benchmarks/ddp_speed.py --device cpu --processes 1 2 --size 64   # anywhere

Each configuration trains the paper's networks (ResNet-9 + 70×70 PatchGAN, LSGAN,
identity loss, pool of 50) on random 256² batches of 1 image per process, through
cyclestudio's own CycleGAN and core/distributed.py (the DDP wrapping `train --gpus`
uses), and times ``--steps`` steps after ``--warmup``. Images/s counts every process.

- One process per GPU (NCCL) when there are at least N GPUs.
- ``--share-gpu``: N processes on GPU 0 (gloo carries the gradients through the host,
  since NCCL refuses two processes on one GPU). They cannot beat one process; the
  figure shows what DDP's communication costs on top of the shared GPU's work.
- ``--device cpu``: N CPU processes over gloo (how the tests run it).

Not measured yet: no GPU was lent to the session that wrote it (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time

# As the CLI does: OpenMP threads that spin while waiting starve the other processes.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402 - after the OpenMP setting, which torch reads once
import torch.multiprocessing as mp  # noqa: E402


def _config(size: int) -> object:
    from cyclestudio.core.config import ArchChoice, DataConfig, TrainConfig

    return TrainConfig(data=DataConfig(a=("a",), b=("b",), size=size),
                       generator=ArchChoice("resnet_9blocks"),
                       discriminator=ArchChoice("patchgan"))


def _steps(rank: int, world: int, port: int, args: argparse.Namespace,
           results: object) -> None:
    """One process: build, wrap for DDP (when several), warm up, time the steps."""
    from cyclestudio.core import distributed
    from cyclestudio.core.cyclegan import CycleGAN

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    ranks = distributed.from_env()
    if args.device == "cpu":
        device = torch.device("cpu")
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    else:
        device = torch.device("cuda", 0 if args.share_gpu else rank)
        torch.cuda.set_device(device)
    if world > 1:
        from datetime import timedelta

        import torch.distributed as dist

        backend = "nccl" if device.type == "cuda" and not args.share_gpu else "gloo"
        dist.init_process_group(backend, timeout=timedelta(seconds=600))
    model = CycleGAN(_config(args.size), device, iterations_per_epoch=1000)
    if world > 1:
        distributed.wrap(model, ranks)
    g = torch.Generator().manual_seed(rank)
    a = torch.rand(1, 3, args.size, args.size, generator=g) * 2 - 1
    b = torch.rand(1, 3, args.size, args.size, generator=g) * 2 - 1
    times = []
    for step in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        model.train_step(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    if rank == 0:
        results.put(statistics.median(times))  # type: ignore[attr-defined]
    if world > 1:
        distributed.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--share-gpu", action="store_true")
    args = parser.parse_args()
    gpus = torch.cuda.device_count() if args.device == "cuda" else 0
    if args.device == "cuda" and gpus == 0:
        raise SystemExit("no CUDA GPU here; use --device cpu to try the script")
    name = torch.cuda.get_device_name(0) if gpus else f"{os.cpu_count()} CPUs"
    print(f"ResNet-9 + PatchGAN at {args.size}², batch 1 per process, {name}, torch "
          f"{torch.__version__}")
    print("| processes | placement | s/iteration | images/s | vs one process |")
    print("| --- | --- | --- | --- | --- |")
    context = mp.get_context("spawn")
    single = None
    for world in args.processes:
        if args.device == "cuda" and not args.share_gpu and world > gpus:
            print(f"| {world} | skipped: {gpus} GPU(s) | | | |")
            continue
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        results = context.SimpleQueue()
        procs = [context.Process(target=_steps, args=(r, world, port, args, results))
                 for r in range(world)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        if any(p.exitcode for p in procs):
            raise SystemExit(f"{world} processes: a process failed")
        seconds = results.get()
        rate = world / seconds
        single = rate if world == 1 else single
        placement = ("CPU" if args.device == "cpu" else
                     "one GPU, shared (gloo)" if args.share_gpu and world > 1 else
                     "one GPU each (NCCL)" if world > 1 else "one GPU")
        ratio = f"{rate / single:.2f}×" if single else ""
        print(f"| {world} | {placement} | {seconds:.3f} | {rate:.2f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
