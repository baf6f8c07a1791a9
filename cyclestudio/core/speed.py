"""The speed measures of a training run, resolved for the device it runs on.

Each measure is a setting (options.py, group "speed") that is ``auto``, ``on`` or
``off``: ``auto`` turns it on only where it was measured faster (benchmarks/README.md),
``off`` is there for debugging and for comparing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from cyclestudio.core.devices import resolve_precision

_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


@dataclass(frozen=True)
class Speed:
    """What a run actually uses."""

    precision: str  # fp32, bf16 or fp16
    channels_last: bool
    fused_optimizer: bool
    benchmark: bool
    compile: bool = False
    checkpointing: bool = False

    def to_json(self) -> dict[str, object]:
        """For the `started` event."""
        return {"precision": self.precision, "channels_last": self.channels_last,
                "fused_optimizer": self.fused_optimizer, "benchmark": self.benchmark,
                "compile": self.compile, "checkpointing": self.checkpointing}

    @property
    def memory_format(self) -> torch.memory_format:
        """The layout networks and batches use."""
        return torch.channels_last if self.channels_last else torch.contiguous_format


def _switch(value: str, auto: bool) -> bool:
    return auto if value == "auto" else value == "on"


def fused_adam_available(device: torch.device) -> bool:
    """Whether this torch has Adam's fused kernel for ``device``."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and tuple(int(p) for p in torch.__version__.split(".")[:2]) >= (
        2, 4)


def resolve(run: object, device: torch.device, fixed_size: bool) -> Speed:
    """The measures for ``run`` (a RunConfig) on ``device``; ``fixed_size``: every batch has
    the same shape (a crop), so cuDNN's benchmark pays off."""
    cuda = device.type == "cuda"
    precision = _NAMES[resolve_precision(getattr(run, "precision", "auto"), device)]
    fused = _switch(getattr(run, "fused_optimizer", "auto"), cuda)
    return Speed(
        precision=precision,
        channels_last=_switch(getattr(run, "channels_last", "auto"), cuda),
        fused_optimizer=fused and fused_adam_available(device),
        benchmark=cuda and _switch(getattr(run, "benchmark", "auto"), fixed_size),
        compile=_switch(getattr(run, "compile", "off"), False),
        checkpointing=getattr(run, "checkpointing", "off") == "on",
    )


def checkpoint_activations(net: nn.Module) -> None:
    """Gradient checkpointing for ``net``: while training, keep the activations of only a
    few points of its longest chain of layers and recompute the rest in the backward pass
    (less memory for large crops, one more forward pass of time). Any generator works:
    its largest ``nn.Sequential`` is cut into about √n segments (the ResNets' one chain,
    a U-Net's outermost level); one without any is recomputed whole. Inference, and the
    weights' names in checkpoints and model files, are unchanged."""
    from torch.utils.checkpoint import checkpoint, checkpoint_sequential

    chains = [m for m in net.modules() if isinstance(m, nn.Sequential) and len(m) >= 3]
    if chains:
        chain = max(chains, key=lambda m: sum(p.numel() for p in m.parameters()))
        segments = max(2, round(math.sqrt(len(chain))))

        def forward_chain(x: torch.Tensor) -> torch.Tensor:
            if torch.is_grad_enabled():
                return checkpoint_sequential(chain, segments, x, use_reentrant=False)
            return nn.Sequential.forward(chain, x)

        chain.forward = forward_chain  # type: ignore[method-assign]
        return
    plain = net.forward

    def forward_whole(*args: object, **kwargs: object) -> object:
        if torch.is_grad_enabled():
            return checkpoint(plain, *args, use_reentrant=False, **kwargs)
        return plain(*args, **kwargs)

    net.forward = forward_whole  # type: ignore[method-assign]
