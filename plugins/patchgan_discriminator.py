"""PatchGAN discriminator: classifies overlapping patches (70×70 with 3 layers) as real or fake."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from cyclestudio.core.layers import NORMS, norm_layer, uses_bias
from cyclestudio.plugins import Architecture, Option, hookimpl


class NLayerDiscriminator(nn.Module):
    """C64-C128-C256-C512 for n_layers=3, then a 1-channel map of raw patch scores."""

    def __init__(
        self, in_channels: int, width: int = 64, n_layers: int = 3, norm: str = "instance"
    ) -> None:
        super().__init__()
        bias = uses_bias(norm)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(width * prev, width * mult, 4, stride=2, padding=1, bias=bias),
                norm_layer(norm, width * mult),
                nn.LeakyReLU(0.2, True),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(width * prev, width * mult, 4, stride=1, padding=1, bias=bias),
            norm_layer(norm, width * mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(width * mult, 1, 4, stride=1, padding=1),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def build(in_channels: int, **options: Any) -> nn.Module:
    """A PatchGAN discriminator with the given options."""
    return NLayerDiscriminator(in_channels, **options)


@hookimpl
def discriminators() -> list[Architecture]:
    """The paper's 70×70 PatchGAN (n_layers sets the patch size)."""
    return [
        Architecture(
            name="patchgan",
            title="PatchGAN",
            build=build,
            options=[
                Option("width", int, 64, "Channels of the first layer (ndf)", min=1, max=1024),
                Option(
                    "n_layers", int, 3,
                    "Strided layers: 1 → 16×16 patches, 2 → 34×34, 3 → 70×70, 4 → 142×142",
                    min=1, max=6,
                ),
                Option("norm", str, "instance", "Normalisation layer", choices=NORMS),
            ],
            description="Scores overlapping image patches as real or fake (70×70 by default).",
        )
    ]
