"""PixelGAN discriminator: 1×1 convolutions, judging each pixel's colour alone."""

from __future__ import annotations

from torch import Tensor, nn

from cyclestudio.plugins import DiscriminatorSpec, Option, hookimpl
from cyclestudio.plugins.layers import NORMS, norm_layer, uses_bias


class PixelDiscriminator(nn.Module):
    """A 1×1 PatchGAN: no spatial context, only colour statistics."""

    def __init__(self, in_channels: int, width: int = 64, norm: str = "instance") -> None:
        super().__init__()
        bias = uses_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(width, width * 2, 1, bias=bias),
            norm_layer(norm, width * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(width * 2, 1, 1, bias=bias),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def build(in_channels: int, width: int, norm: str) -> nn.Module:
    """A pixel discriminator with the given options."""
    return PixelDiscriminator(in_channels, width, norm)


@hookimpl
def discriminators() -> list[DiscriminatorSpec]:
    """The 1×1 pixel discriminator."""
    return [
        DiscriminatorSpec(
            name="pixel",
            title="PixelGAN (1×1)",
            build=build,
            options=[
                Option("width", int, 64, "Channels of the first layer (ndf)", min=1, max=1024),
                Option("norm", str, "instance", "Normalisation layer", choices=NORMS),
            ],
            description="Judges each pixel's colour on its own; no spatial structure.",
        )
    ]
