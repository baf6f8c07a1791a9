"""A light ResNet generator: depthwise-separable residual blocks (a cyclestudio plugin).

Same shape as the CycleGAN paper's ResNet generator (7×7 in, two halvings, residual
blocks at 1/4 resolution, two doublings, 7×7 out, tanh), but each 3×3 convolution in
the blocks is split into a per-channel 3×3 and a 1×1 across channels.
"""

from __future__ import annotations

from torch import Tensor, nn

from cyclestudio.plugins import GeneratorSpec, Option, hookimpl
from cyclestudio.plugins.layers import (
    DOWNSAMPLES,
    NORMS,
    UPSAMPLES,
    downsample_block,
    norm_layer,
    padding_layer,
    upsample_layer,
    uses_bias,
)

__version__ = "0.1.0"


class SeparableBlock(nn.Module):
    """x + [depthwise 3×3, pointwise 1×1, norm, ReLU] twice (no ReLU after the last norm)."""

    def __init__(self, dim: int, norm: str) -> None:
        super().__init__()
        bias = uses_bias(norm)
        layers: list[nn.Module] = []
        for i in range(2):
            pad, conv_pad = padding_layer("reflect", 1)
            layers += pad + [
                nn.Conv2d(dim, dim, 3, padding=conv_pad, groups=dim, bias=False),
                nn.Conv2d(dim, dim, 1, bias=bias),
                norm_layer(norm, dim),
            ]
            if i == 0:
                layers.append(nn.ReLU(True))
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class MobileResnetGenerator(nn.Module):
    """c7s1-w, two halvings, separable residual blocks, two doublings, c7s1-out, tanh."""

    def __init__(self, in_channels: int, out_channels: int, width: int, blocks: int,
                 norm: str, upsample: str, downsample: str) -> None:
        super().__init__()
        bias = uses_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, width, 7, bias=bias),
            norm_layer(norm, width),
            nn.ReLU(True),
        ]
        layers += downsample_block(downsample, width, width * 2, norm)
        layers += downsample_block(downsample, width * 2, width * 4, norm)
        layers += [SeparableBlock(width * 4, norm) for _ in range(blocks)]
        for mult in (4, 2):
            layers += upsample_layer(upsample, width * mult, width * mult // 2, 3, bias)
            layers += [norm_layer(norm, width * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def build(in_channels: int, out_channels: int, width: int, blocks: int, norm: str,
          upsample: str, downsample: str) -> nn.Module:
    """cyclestudio calls this with the channel counts and every option by name."""
    return MobileResnetGenerator(in_channels, out_channels, width, blocks, norm, upsample,
                                 downsample)


@hookimpl
def generators() -> list[GeneratorSpec]:
    """The one generator this package offers."""
    return [
        GeneratorSpec(
            name="mobile_resnet",
            title="Mobile ResNet (separable)",
            build=build,
            options=[
                Option("width", int, 64, "Channels of the first layer", min=1, max=256),
                Option("blocks", int, 9, "Residual blocks in the middle", min=1, max=32),
                Option("norm", str, "instance", "Normalisation layer", choices=NORMS),
                Option("upsample", str, "resize",
                       "resize: nearest-neighbour then convolve (no checkerboard); "
                       "transposed: the paper's transposed convolutions", choices=UPSAMPLES),
                Option("downsample", str, "strided",
                       "strided: stride-2 convolutions; blurpool: anti-aliased",
                       choices=DOWNSAMPLES),
            ],
            size_multiple=4,
            description=(
                "The paper's ResNet generator with depthwise-separable residual blocks: "
                "about a sixth of its parameters at the same width."
            ),
        )
    ]
