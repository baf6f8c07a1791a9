"""What the colour-distribution loss (``--lambda-colour``) costs a training step.

    python benchmarks/colour_loss_cost.py [--weight 30] [--size 64] [--rounds 8] [--steps 10]
                                          [--threads 1]

Builds the `fast` preset's networks twice in one process, with ``--lambda-colour``
``--weight`` and with 0, warms both up past the loss's fade-in, then times rounds
of training steps, alternating the two so that load from other programs falls on both
alike. Prints the CPU time a step (median and best round) of each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from cyclestudio import options
from cyclestudio.core.config import ArchChoice, DataConfig, OptimConfig, RunConfig, TrainConfig
from cyclestudio.core.cyclegan import CycleGAN


def model(size: int, lambda_colour: float) -> CycleGAN:
    fast = options.preset("fast")
    settings = {k: v for k, v in fast.settings.items() if k in OptimConfig.__dataclass_fields__}
    settings["lambda_colour"] = lambda_colour
    config = TrainConfig(
        data=DataConfig(a=("a",), b=("b",), size=size),
        generator=ArchChoice(fast.settings["generator"], dict(fast.generator_options)),
        discriminator=ArchChoice(options.DEFAULT_DISCRIMINATOR,
                                 dict(fast.discriminator_options)),
        optim=OptimConfig(**settings), run=RunConfig(seed=0, device="cpu"))
    return CycleGAN(config, torch.device("cpu"), 100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weight", type=float, default=30.0, help="--lambda-colour to time")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    weight = args.weight
    models = {0.0: model(args.size, 0.0), weight: model(args.size, weight)}
    a = torch.rand(1, 3, args.size, args.size) * 2 - 1
    b = torch.rand(1, 3, args.size, args.size) * 2 - 1
    for m in models.values():
        for _ in range(70):  # past the fade-in: the real cloud holds 64 steps
            m.train_step(a, b)
    times: dict[float, list[float]] = {k: [] for k in models}
    for _ in range(args.rounds):
        for k, m in models.items():
            start = time.process_time()
            for _ in range(args.steps):
                m.train_step(a, b)
            times[k].append((time.process_time() - start) / args.steps * 1000)
    for k, v in times.items():
        print(f"--lambda-colour {k:g}: {statistics.median(v):.1f} ms of CPU a step "
              f"(median of {args.rounds} rounds; best {min(v):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
