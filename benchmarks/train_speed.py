"""Training throughput of the paper's setup (ResNet-9 + 70×70 PatchGAN, batch 1).

    python benchmarks/train_speed.py [--size 256] [--steps 6] [--device cpu]

Times full CycleGAN steps (both generators, both discriminators, identity loss, pool)
after two warm-up steps, for each precision the device supports, in one process. The
reference implementation's figure for comparison: 0.35 s/iteration on a GTX 1080 Ti
at 256² (CycleGAN issue #219).
"""

from __future__ import annotations

import argparse
import time

import torch

from cyclestudio.core.config import ArchChoice, DataConfig, RunConfig, TrainConfig
from cyclestudio.core.cyclegan import CycleGAN
from cyclestudio.core.devices import pick_device


def measure(device: torch.device, precision: str, size: int, steps: int) -> float:
    config = TrainConfig(
        data=DataConfig(a=("a",), b=("b",), size=size),
        generator=ArchChoice("resnet_9blocks", {}),
        discriminator=ArchChoice("patchgan", {}),
        run=RunConfig(precision=precision),
    )
    model = CycleGAN(config, device, iterations_per_epoch=1000)
    a = torch.rand(1, 3, size, size, device=device) * 2 - 1
    b = torch.rand(1, 3, size, size, device=device) * 2 - 1
    for _ in range(2):
        model.train_step(a, b)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        model.train_step(a, b)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = pick_device(args.device)
    precisions = ["fp32", "bf16"] + (["fp16"] if device.type == "cuda" else [])
    print(f"device {device}, {torch.get_num_threads()} threads, {args.size}², batch 1")
    for precision in precisions:
        seconds = measure(device, precision, args.size, args.steps)
        print(f"{precision}: {seconds:.3f} s/iteration ({1 / seconds:.2f} it/s)")


if __name__ == "__main__":
    main()
