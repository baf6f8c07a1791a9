"""Training speed on a CUDA GPU: the plain fp32 step against cyclestudio's defaults.

    python benchmarks/gpu_speed.py [--size 256] [--seconds 6] [--batches 1,4,8,16]

Each row times full CycleGAN steps (ResNet-9 + 70×70 PatchGAN, both directions,
identity loss, pool) on random batches, after warm-up steps, for a few seconds:

- plain: what the reference implementation does (fp32, NCHW, unfused Adam, no cuDNN
  benchmark), batch 1;
- default: cyclestudio's `--precision auto` etc. (bf16 autocast, channels_last, fused
  Adam, cuDNN benchmark), at batch 1 and at the best batch of --batches;
- default + compile: the same with `--compile on`.

Model-FLOPs utilisation counts 2 TFLOP per 256² image per iteration (scaled by the
pixel count at other sizes) against the GPU's dense bf16 peak (fp32 rows use the same
peak, so MFU compares like with like). The last lines are one table.
"""

from __future__ import annotations

import argparse
import time

import torch

from cyclestudio.core.config import ArchChoice, DataConfig, OptimConfig, RunConfig, TrainConfig
from cyclestudio.core.cyclegan import CycleGAN

FLOPS_256 = 2e12  # per image per iteration at 256² (the figure for ResNet-9)
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12,
             "RTX 4090": 165e12, "RTX 3090": 71e12}

PLAIN = {"precision": "fp32", "channels_last": "off", "fused_optimizer": "off",
         "benchmark": "off", "compile": "off"}
DEFAULT = {"precision": "auto", "channels_last": "auto", "fused_optimizer": "auto",
           "benchmark": "auto", "compile": "off"}


def peak_flops() -> float | None:
    """The GPU's dense bf16 peak, if it is one we know."""
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def measure(size: int, batch: int, run: dict[str, str], seconds: float) -> tuple[float, int]:
    """(images per second, peak bytes) for one configuration."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    config = TrainConfig(data=DataConfig(a=("a",), b=("b",), size=size),
                         generator=ArchChoice("resnet_9blocks", {}),
                         discriminator=ArchChoice("patchgan", {}),
                         optim=OptimConfig(batch_size=batch), run=RunConfig(**run))
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = run["benchmark"] != "off"
    model = CycleGAN(config, device, iterations_per_epoch=1000)
    a = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    b = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    for _ in range(3 if run["compile"] == "off" else 6):
        model.train_step(a, b)
    torch.cuda.synchronize()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        model.train_step(a, b)
        steps += 1
    torch.cuda.synchronize()
    rate = steps * batch / (time.perf_counter() - start)
    peak = int(torch.cuda.max_memory_allocated())
    del model
    return rate, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--batches", default="1,4,8,16")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU")
    flops = FLOPS_256 * (args.size / 256) ** 2
    peak = peak_flops()
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {args.size}², "
          f"ResNet-9 + PatchGAN", flush=True)
    rows: list[tuple[str, int, float, int]] = []
    plain, plain_mem = measure(args.size, 1, PLAIN, args.seconds)
    rows.append(("plain fp32", 1, plain, plain_mem))
    print(f"plain: {plain:.1f} img/s", flush=True)
    best: tuple[float, int, int] = (0.0, 1, 0)
    for batch in (int(b) for b in args.batches.split(",")):
        try:
            rate, mem = measure(args.size, batch, DEFAULT, args.seconds)
        except torch.cuda.OutOfMemoryError:
            print(f"default batch {batch}: out of memory", flush=True)
            break
        print(f"default batch {batch}: {rate:.1f} img/s", flush=True)
        if batch == 1:
            rows.append(("default", 1, rate, mem))
        if rate > best[0]:
            best = (rate, batch, mem)
    rows.append(("default, best batch", best[1], best[0], best[2]))
    for batch in sorted({1, best[1]}):
        try:
            rate, mem = measure(args.size, batch, {**DEFAULT, "compile": "on"}, args.seconds)
            rows.append(("default + compile", batch, rate, mem))
        except Exception as exc:  # noqa: BLE001 - report the row, keep the table
            print(f"compile batch {batch} failed: {type(exc).__name__}: {exc}", flush=True)
    print()
    print("| configuration | batch | images/s | speed-up | MFU | peak memory |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, batch, rate, mem in rows:
        mfu = f"{rate * flops / peak:.0%}" if peak else "?"
        print(f"| {name} | {batch} | {rate:.1f} | {rate / plain:.2f}× | {mfu} | "
              f"{mem / 2**30:.1f} GiB |")


if __name__ == "__main__":
    main()
