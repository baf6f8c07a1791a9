"""ResNet generator from the CycleGAN paper (Johnson et al.'s style-transfer network).

c7s1-64, d128, d256, R256 × blocks, u128, u64, c7s1-3: two stride-2 downsamplings, so
both image sides must be multiples of 4. The outer 7×7 convolutions always pad by
reflection, as in the paper; the ``padding`` option is the residual blocks' padding.
"""

from __future__ import annotations

from torch import Tensor, nn

from cyclestudio.plugins import GeneratorSpec, Option, hookimpl
from cyclestudio.plugins.layers import (
    DOWNSAMPLES,
    NORMS,
    PADDINGS,
    UPSAMPLES,
    SelfAttention2d,
    downsample_block,
    norm_layer,
    padding_layer,
    upsample_layer,
    uses_bias,
)


class ResnetBlock(nn.Module):
    """Two 3×3 convolutions with a skip connection around them."""

    def __init__(self, dim: int, padding: str, norm: str, dropout: bool) -> None:
        super().__init__()
        bias = uses_bias(norm)
        layers: list[nn.Module] = []
        for i in range(2):
            pad, conv_pad = padding_layer(padding, 1)
            layers += pad + [nn.Conv2d(dim, dim, 3, padding=conv_pad, bias=bias)]
            layers.append(norm_layer(norm, dim))
            if i == 0:
                layers.append(nn.ReLU(True))
                if dropout:
                    layers.append(nn.Dropout(0.5))
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """Downsample twice, transform with residual blocks, upsample twice.

    ``attention`` puts a self-attention layer halfway through the residual blocks.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 64,
        blocks: int = 9,
        norm: str = "instance",
        dropout: bool = False,
        upsample: str = "transposed",
        padding: str = "reflect",
        downsample: str = "strided",
        attention: bool = False,
    ) -> None:
        super().__init__()
        bias = uses_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, width, 7, bias=bias),
            norm_layer(norm, width),
            nn.ReLU(True),
        ]
        for i in range(2):
            mult = 2**i
            layers += downsample_block(downsample, width * mult, width * mult * 2, norm)
        middle = [ResnetBlock(width * 4, padding, norm, dropout) for _ in range(blocks)]
        if attention:
            middle.insert(blocks // 2, SelfAttention2d(width * 4))
        layers += middle
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += upsample_layer(upsample, width * mult, width * mult // 2, 3, bias)
            layers += [norm_layer(norm, width * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def resnet_options(blocks: int) -> list[Option]:
    """The ResNet generators' options (shared with the self-attention variant)."""
    return [
        Option("width", int, 64, "Channels of the first layer (ngf)", min=1, max=1024),
        Option("blocks", int, blocks, "Residual blocks in the middle", min=1, max=64),
        Option("norm", str, "instance", "Normalisation layer", choices=NORMS),
        Option("dropout", bool, False, "Dropout (0.5) inside the residual blocks"),
        Option(
            "upsample", str, "transposed",
            "transposed: the paper's transposed convolutions; resize: nearest-neighbour "
            "resize then convolve, which avoids checkerboard artifacts",
            choices=UPSAMPLES,
        ),
        Option(
            "downsample", str, "strided",
            "strided: the paper's stride-2 convolutions; blurpool: anti-aliased "
            "(convolve, blur, then subsample; Zhang 2019), steadier when the input shifts",
            choices=DOWNSAMPLES,
        ),
        Option(
            "padding", str, "reflect",
            "Padding of the 3×3 convolutions inside the residual blocks; the outer 7×7 "
            "convolutions always pad by reflection, as in the paper",
            choices=PADDINGS,
        ),
    ]


def build(
    in_channels: int, out_channels: int, width: int, blocks: int, norm: str, dropout: bool,
    upsample: str, downsample: str, padding: str,
) -> nn.Module:
    """A ResNet generator with the given options."""
    return ResnetGenerator(in_channels, out_channels, width, blocks, norm, dropout, upsample,
                           padding, downsample)


@hookimpl
def generators() -> list[GeneratorSpec]:
    """The paper's ResNet generators: 9 blocks (256 px and up) and 6 blocks (128 px)."""
    return [
        GeneratorSpec(
            name=f"resnet_{n}blocks",
            title=f"ResNet, {n} blocks",
            build=build,
            options=resnet_options(n),
            size_multiple=4,
            description=(
                "The CycleGAN paper's generator: two downsamplings, residual blocks, "
                f"two upsamplings. The paper uses {n} blocks for "
                f"{'256×256 and larger' if n == 9 else '128×128'} images."
            ),
        )
        for n in (9, 6)
    ]
