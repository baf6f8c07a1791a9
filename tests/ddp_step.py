"""One CycleGAN step as one process of a distributed run (tests/test_distributed.py runs it).

Usage: RANK=r WORLD_SIZE=n MASTER_ADDR=... MASTER_PORT=... python ddp_step.py OUT

Every process builds the same tiny CycleGAN, wraps it for DDP with cyclestudio's own
code, and takes one step on its own slice of a fixed batch. Rank 0 saves the gradients
every network ended the step with to OUT. Then each takes a WGAN-GP step, whose
gradient penalty differentiates through a DDP-wrapped discriminator twice.
"""

from __future__ import annotations

import sys

import torch

from cyclestudio.core import distributed
from cyclestudio.core.config import ArchChoice, DataConfig, OptimConfig, RunConfig, TrainConfig
from cyclestudio.core.cyclegan import CycleGAN

BATCH = 4  # images in the whole (global) batch


def config(gan_loss: str) -> TrainConfig:
    """A tiny run: width-4 networks on 32-pixel crops, no pool (so steps are comparable),
    in fp32: on a CPU with fast bf16 the automatic precision would be bf16, whose
    rounding differs between a batch of 4 and two of 2 far beyond the tolerance."""
    return TrainConfig(
        data=DataConfig(a=("a",), b=("b",), size=32, load_size=36),
        generator=ArchChoice("resnet_6blocks", {"width": 4}),
        discriminator=ArchChoice("patchgan", {"width": 4}),
        optim=OptimConfig(pool_size=0, gan_loss=gan_loss),
        run=RunConfig(precision="fp32"),
    )


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """The global batch: the same tensors in every process."""
    g = torch.Generator().manual_seed(123)
    return (torch.rand(BATCH, 3, 32, 32, generator=g) * 2 - 1,
            torch.rand(BATCH, 3, 32, 32, generator=g) * 2 - 1)


def gradients(model: CycleGAN) -> dict[str, torch.Tensor]:
    """Every parameter's gradient after a step, by network and name."""
    return {f"{net}.{name}": p.grad.detach().clone()
            for net, module in model.nets.items() for name, p in module.named_parameters()}


def step(gan_loss: str, ranks: distributed.Ranks) -> CycleGAN:
    """One DDP step of this process's slice of the batch."""
    model = CycleGAN(config(gan_loss), torch.device("cpu"), iterations_per_epoch=1)
    distributed.wrap(model, ranks)
    a, b = batch()
    share = BATCH // ranks.world_size
    mine = slice(ranks.rank * share, (ranks.rank + 1) * share)
    losses = model.train_step(a[mine], b[mine])
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
    return model


def main(out: str) -> None:
    ranks = distributed.from_env()
    distributed.init_process_group(torch.device("cpu"), timeout_s=120)
    try:
        model = step("lsgan", ranks)
        if ranks.is_main:
            torch.save(gradients(model), out)
        step("wgangp", ranks)
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
