"""U-Net generator (pix2pix): an encoder-decoder with skip connections at every level.

unet_256 halves the image 8 times, so both sides must be multiples of 256;
unet_128 halves it 7 times (multiples of 128).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cyclestudio.plugins import GeneratorSpec, Option, hookimpl
from cyclestudio.plugins.layers import NORMS, UPSAMPLES, norm_layer, upsample_layer, uses_bias


class UnetSkipConnectionBlock(nn.Module):
    """One level: downsample, the inner levels, upsample, concatenated with the input."""

    def __init__(
        self,
        outer: int,
        inner: int,
        in_channels: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "instance",
        dropout: bool = False,
        upsample: str = "transposed",
    ) -> None:
        super().__init__()
        self.outermost = outermost
        bias = uses_bias(norm)
        in_channels = outer if in_channels is None else in_channels
        downconv = nn.Conv2d(in_channels, inner, 4, stride=2, padding=1, bias=bias)
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)
        layers: list[nn.Module]
        if outermost:
            up = upsample_layer(upsample, inner * 2, outer, 4, True)
            layers = [downconv, submodule, uprelu, *up, nn.Tanh()]  # type: ignore[list-item]
        elif innermost:
            up = upsample_layer(upsample, inner, outer, 4, bias)
            layers = [downrelu, downconv, uprelu, *up, norm_layer(norm, outer)]
        else:
            up = upsample_layer(upsample, inner * 2, outer, 4, bias)
            layers = [
                downrelu, downconv, norm_layer(norm, inner), submodule,  # type: ignore[list-item]
                uprelu, *up, norm_layer(norm, outer),
            ]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """A U-Net that halves the image ``downs`` times."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        downs: int,
        width: int = 64,
        norm: str = "instance",
        dropout: bool = False,
        upsample: str = "transposed",
    ) -> None:
        super().__init__()
        kw = {"norm": norm, "upsample": upsample}
        block = UnetSkipConnectionBlock(width * 8, width * 8, innermost=True, **kw)
        for _ in range(downs - 5):
            block = UnetSkipConnectionBlock(
                width * 8, width * 8, submodule=block, dropout=dropout, **kw
            )
        block = UnetSkipConnectionBlock(width * 4, width * 8, submodule=block, **kw)
        block = UnetSkipConnectionBlock(width * 2, width * 4, submodule=block, **kw)
        block = UnetSkipConnectionBlock(width, width * 2, submodule=block, **kw)
        self.model = UnetSkipConnectionBlock(
            out_channels, width, in_channels=in_channels, submodule=block, outermost=True, **kw
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def _options() -> list[Option]:
    return [
        Option("width", int, 64, "Channels of the first layer (ngf)", min=1, max=1024),
        Option("norm", str, "instance", "Normalisation layer", choices=NORMS),
        Option("dropout", bool, False, "Dropout (0.5) in the inner decoder levels"),
        Option(
            "upsample", str, "transposed",
            "transposed: the paper's transposed convolutions; resize: resize then "
            "convolve, which avoids checkerboard artifacts",
            choices=UPSAMPLES,
        ),
    ]


def _builder(downs: int):
    def build(in_channels: int, out_channels: int, **options: Any) -> nn.Module:
        return UnetGenerator(in_channels, out_channels, downs, **options)

    return build


@hookimpl
def generators() -> list[GeneratorSpec]:
    """U-Net generators for 256×256 (8 levels) and 128×128 (7 levels) images."""
    return [
        GeneratorSpec(
            name=f"unet_{size}",
            title=f"U-Net {size}",
            build=_builder(downs),
            options=_options(),
            size_multiple=2**downs,
            description=(
                f"An encoder-decoder with skip connections, {downs} levels deep: both image "
                f"sides must be multiples of {size}."
            ),
        )
        for size, downs in ((256, 8), (128, 7))
    ]
