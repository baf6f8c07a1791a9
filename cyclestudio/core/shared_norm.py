"""Instance norm that can share one image's statistics across tiles of that image.

A CycleGAN generator normalises with instance norm, whose statistics depend on the
whole image: tiles normalised on their own come out with blotches and visible seams.
A wrapped norm can record each layer's mean and variance on a whole (or downscaled)
run of the image and apply them to every tile.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SharedInstanceNorm(nn.Module):
    """Stands in for an InstanceNorm2d: records its input statistics or applies recorded ones."""

    def __init__(self, original: nn.InstanceNorm2d) -> None:
        super().__init__()
        self.original = original
        self.eps = original.eps
        self.mode = "native"  # native | record | apply
        self.stats: tuple[Tensor, Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "native" or (self.mode == "apply" and self.stats is None):
            return self.original(x)  # the fastest path on CPU and GPU alike
        if self.mode == "apply":
            assert self.stats is not None
            mean, var = self.stats
        else:
            var, mean = torch.var_mean(x.float(), dim=(2, 3), keepdim=True, correction=0)
            self.stats = (mean, var)
        scale = torch.rsqrt(var + self.eps)
        shift = -mean * scale
        if self.original.affine:
            w = self.original.weight.float().view(1, -1, 1, 1)
            b = self.original.bias.float().view(1, -1, 1, 1)
            scale, shift = scale * w, shift * w + b
        return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))


def wrap_instance_norms(net: nn.Module) -> list[SharedInstanceNorm]:
    """Swap every InstanceNorm2d (without running statistics) for a shareable one."""
    wrapped: list[SharedInstanceNorm] = []
    for name, child in list(net.named_children()):
        if isinstance(child, nn.InstanceNorm2d) and not child.track_running_stats:
            shared = SharedInstanceNorm(child)
            setattr(net, name, shared)
            wrapped.append(shared)
        elif isinstance(child, SharedInstanceNorm):
            wrapped.append(child)
        else:
            wrapped += wrap_instance_norms(child)
    return wrapped
