"""Multi-scale PatchGAN (pix2pixHD, Wang et al. 2018): one PatchGAN per image scale.

Scale 1 sees the image, scale 2 the image halved, scale 3 quartered: the coarse
discriminators judge the overall layout with the same receptive field that the
fine one spends on texture. Each scale's score map is resized to the first's and
the maps are stacked as channels, ``(N, scales, H, W)``, so every scale weighs the
same in the loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812 - the usual name

from cyclestudio.plugins import DiscriminatorSpec, Option, hookimpl
from cyclestudio_plugins.patchgan_discriminator import (
    NLayerDiscriminator,
    finish,
    patchgan_min_size,
    patchgan_options,
)


class MultiscaleDiscriminator(nn.Module):
    """PatchGANs on the image at full, half (and quarter) resolution."""

    def __init__(self, in_channels: int, width: int, n_layers: int, norm: str, scales: int
                 ) -> None:
        super().__init__()
        self.scales = nn.ModuleList(
            NLayerDiscriminator(in_channels, width, n_layers, norm) for _ in range(scales)
        )
        self.down = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: Tensor) -> Tensor:
        maps = []
        for i, d in enumerate(self.scales):
            if i:
                x = self.down(x)
            scores = d(x)
            if maps:
                scores = F.interpolate(scores, size=maps[0].shape[-2:], mode="nearest")
            maps.append(scores)
        return torch.cat(maps, 1)


def build(in_channels: int, width: int, n_layers: int, norm: str, spectral_norm: bool,
          scales: int) -> nn.Module:
    """A multi-scale PatchGAN with the given options."""
    return finish(MultiscaleDiscriminator(in_channels, width, n_layers, norm, scales),
                  spectral_norm)


def min_size(options: Mapping[str, Any]) -> int:
    """The coarsest scale must still fit one patch."""
    return patchgan_min_size(options) * 2 ** (int(options["scales"]) - 1)


@hookimpl
def discriminators() -> list[DiscriminatorSpec]:
    """The multi-scale PatchGAN."""
    return [
        DiscriminatorSpec(
            name="multiscale_patchgan",
            title="Multi-scale PatchGAN",
            build=build,
            options=[
                *patchgan_options(),
                Option("scales", int, 2, "Image scales, each halving the last (2 or 3)",
                       min=2, max=3),
            ],
            min_size=min_size,
            keeps_own_init=True,
            description=(
                "PatchGANs at full and reduced resolution (pix2pixHD): the coarser ones judge "
                "the overall layout, which helps on large images. Needs images of at least "
                "48 px with 2 scales, 96 px with 3 (at n_layers 3)."
            ),
        )
    ]
