"""Tiny runs and model files for the translation tests (no training needed)."""

from __future__ import annotations

from pathlib import Path

import torch

from cyclestudio.core.checkpoint import checkpoint_dir, save_checkpoint
from cyclestudio.core.config import ArchChoice, DataConfig, TrainConfig
from cyclestudio.core.networks import build_discriminator, build_generator


def make_run(
    folder: Path, generator: str = "resnet_6blocks", options: dict | None = None,
    channels: int = 3, seed: int = 0, iteration: int = 7, perturb: float = 0.05,
) -> Path:
    """A run folder holding config.json and a checkpoint of randomly initialised tiny nets."""
    options = {"width": 4, "blocks": 1} if options is None else options
    torch.manual_seed(seed)
    config = TrainConfig(
        data=DataConfig(a=("a",), b=("b",), a_name="horse", b_name="zebra", size=32,
                        load_size=36, channels=channels),
        generator=ArchChoice(generator, options),
        discriminator=ArchChoice("patchgan", {"width": 4}),
    )
    folder.mkdir(parents=True, exist_ok=True)
    config.save(folder / "config.json")
    nets = {}
    for name in ("G_A", "G_B"):
        net = build_generator(generator, options, channels, channels)
        # Random biases and norm scales so the two generators differ visibly.
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p) * perturb)
        nets[name] = net.state_dict()
    for name in ("D_A", "D_B"):
        nets[name] = build_discriminator("patchgan", {"width": 4}, channels).state_dict()
    save_checkpoint(
        {"config": config.to_json(), "iteration": iteration, "epoch": 0, "position": 0,
         "nets": nets},
        checkpoint_dir(folder) / "latest.pt",
    )
    return folder
