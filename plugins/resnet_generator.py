"""ResNet generator from the CycleGAN paper (Johnson et al.'s style-transfer network).

c7s1-64, d128, d256, R256 × blocks, u128, u64, c7s1-3: two stride-2 downsamplings, so
both image sides must be multiples of 4. The outer 7×7 convolutions always pad by
reflection, as in the paper; the ``padding`` option is the residual blocks' padding.

Two options, both off by default (the paper's network, and what a model file without
them was built as), make the generator start as the identity:

- ``residual``: the output is the input plus the network's output (a global skip),
  without the final tanh, and the last 7×7 convolution starts at zero, so an untrained
  generator returns its input unchanged and learns only the change. The output is not
  bounded while training; translation clamps it to the image range.
- ``pixel_branch`` (with ``residual``): a per-pixel MLP (three 1×1 convolutions of this
  width) on the raw input is added too, its last layer also starting at zero. The
  instance-normalised body cannot see an image's absolute colours (the norm removes
  each feature map's mean); this branch maps them directly.
- ``filter_branch`` (with ``residual``): a fixed k×k filter of the raw input, one per
  channel (a depthwise convolution, reflection padded), is added too, starting at zero.
  It is where a blur or a sharpening of the whole image lives, which the body would
  otherwise have to build from its downsampled features; the sharpness start sets it to
  the one the domains' detail shows (cyclestudio/core/sharpness_start.py), and training
  leaves it there (it is a buffer, not a parameter).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cyclestudio.plugins import GeneratorSpec, Option, hookimpl
from cyclestudio.plugins.layers import (
    DOWNSAMPLES,
    NORMS,
    PADDINGS,
    UPSAMPLES,
    PointwiseConv2d,
    SelfAttention2d,
    downsample_block,
    init_weights,
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


class PixelBranch(nn.Module):
    """A per-pixel MLP: 1×1 conv, LeakyReLU, 1×1 conv, LeakyReLU, 1×1 conv (the last at zero)."""

    def __init__(self, channels: int, width: int, gain: float = 1.0) -> None:
        super().__init__()
        self.gain = float(gain)
        self.net = nn.Sequential(
            PointwiseConv2d(channels, width), nn.LeakyReLU(0.2, True),
            PointwiseConv2d(width, width), nn.LeakyReLU(0.2, True),
            PointwiseConv2d(width, channels),
        )
        # He init: without normalisation, N(0, 0.02) would leave the branch nearly dead.
        for m in self.net:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.net[-1].weight)

    def forward(self, x: Tensor) -> Tensor:
        y = self.net(x)
        return y * self.gain if self.gain != 1.0 else y


class FilterBranch(nn.Module):
    """One fixed ``size``×``size`` filter a channel (depthwise, no bias, reflection padded),
    starting at zero: added to the image, ``weight + δ`` is the filter applied to it.

    ``weight`` is a buffer, not a parameter: saved with the network, never trained. The
    sharpness start sets it; left to the optimiser from zero, its 7×7 taps took Adam's
    lr-sized steps from the first iteration and cost the colour task 1 dB at 2
    CPU-minutes (benchmarks/README.md, "The sharpness start"). The body learns the rest.
    """

    def __init__(self, channels: int, size: int) -> None:
        super().__init__()
        if size % 2 == 0:
            raise ValueError(f"filter_branch must be odd (a filter with a centre), not {size}")
        self.pad = nn.ReflectionPad2d(size // 2)
        self.channels = channels
        self.register_buffer("weight", torch.zeros(channels, 1, size, size))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(self.pad(x), self.weight.to(x.dtype), groups=self.channels)


class ResidualResnetGenerator(nn.Module):
    """y = x + f(x) [+ p(x)] [+ k(x)]: a ResNet generator without its tanh, added to its
    input.

    ``f``'s last convolution, ``p``'s last layer and the filter ``k`` start at zero: the
    identity at first.
    """

    def __init__(self, body: ResnetGenerator, pixel_branch: int = 0,
                 pixel_gain: float = 1.0, filter_branch: int = 0) -> None:
        super().__init__()
        layers = list(body.model.children())
        if not isinstance(layers[-1], nn.Tanh) or not isinstance(layers[-2], nn.Conv2d):
            raise ValueError("the ResNet body must end in a convolution and a tanh")
        nn.init.zeros_(layers[-2].weight)
        nn.init.zeros_(layers[-2].bias)
        body.model = nn.Sequential(*layers[:-1])
        self.body = body
        channels = layers[-2].out_channels
        self.pixel = PixelBranch(channels, pixel_branch, pixel_gain) if pixel_branch else None
        self.filter = FilterBranch(channels, filter_branch) if filter_branch else None

    @property
    def colour_branch(self) -> nn.Module | None:
        """The per-pixel branch, whose output is added to the result as it is: what the
        colour-distribution loss (``--lambda-colour``) trains, alone."""
        return self.pixel

    @property
    def filter_branch(self) -> FilterBranch | None:
        """The fixed k×k per-channel filter whose output is added to the result as it is:
        what the sharpness start sets (its ``weight``, (C, 1, k, k), is the filter minus
        δ)."""
        return self.filter

    def forward(self, x: Tensor) -> Tensor:
        change = self.body(x)
        if self.pixel is not None:
            change = change + self.pixel(x)
        if self.filter is not None:
            change = change + self.filter(x)
        return x + change


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


def identity_start_options() -> list[Option]:
    """The options that make the generator start as the identity (off: the paper's)."""
    return [
        Option(
            "residual", bool, False,
            "Identity start: the output is the input plus a learnt change (no final tanh; "
            "the last layer starts at zero), so training starts from the untouched image",
        ),
        Option(
            "pixel_branch", int, 0,
            "With residual: width of a per-pixel colour MLP (1×1 convolutions) added to the "
            "change; it maps absolute colours, which instance norm hides (0: off)",
            min=0, max=1024,
        ),
        Option(
            "pixel_gain", float, 1.0,
            "With pixel_branch: the colour branch's output is multiplied by this, so its "
            "zero-started last layer moves this many times faster in the image (1: plain)",
            min=1.0, max=100.0,
        ),
        Option(
            "filter_branch", int, 0,
            "With residual: size of a fixed per-channel k×k filter of the input added to "
            "the change (odd); it holds a blur or sharpening of the whole image, which the "
            "sharpness start sets and training leaves as it is (0: off)",
            min=0, max=31,
        ),
    ]


def build(
    in_channels: int, out_channels: int, width: int, blocks: int, norm: str, dropout: bool,
    upsample: str, downsample: str, padding: str, residual: bool = False,
    pixel_branch: int = 0, pixel_gain: float = 1.0, filter_branch: int = 0,
) -> nn.Module:
    """A ResNet generator with the given options, initialised as the paper does.

    With ``residual`` the zero-initialised last layers are kept (the spec keeps its own
    initialisation for that reason; without it, this is exactly the paper's network).
    """
    net = ResnetGenerator(in_channels, out_channels, width, blocks, norm, dropout, upsample,
                          padding, downsample)
    init_weights(net)
    if not residual:
        if pixel_branch or filter_branch:
            raise ValueError(f"{'pixel_branch' if pixel_branch else 'filter_branch'} needs "
                             "residual=true")
        return net
    if in_channels != out_channels:
        raise ValueError("residual needs as many output channels as input channels")
    return ResidualResnetGenerator(net, pixel_branch, pixel_gain, filter_branch)


@hookimpl
def generators() -> list[GeneratorSpec]:
    """The paper's ResNet generators: 9 blocks (256 px and up) and 6 blocks (128 px)."""
    return [
        GeneratorSpec(
            name=f"resnet_{n}blocks",
            title=f"ResNet, {n} blocks",
            build=build,
            options=resnet_options(n) + identity_start_options(),
            size_multiple=4,
            keeps_own_init=True,  # build applies the paper's init, then zeroes the last layers
            description=(
                "The CycleGAN paper's generator: two downsamplings, residual blocks, "
                f"two upsamplings. The paper uses {n} blocks for "
                f"{'256×256 and larger' if n == 9 else '128×128'} images. "
                "residual (with pixel_branch and filter_branch) makes it start as the "
                "identity."
            ),
        )
        for n in (9, 6)
    ]
