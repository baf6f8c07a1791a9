"""ResNet generator with self-attention in the bottleneck (SAGAN-style, Zhang et al. 2019).

The paper's ResNet generator with one self-attention layer halfway through the
residual blocks: every position of the 1/4-resolution feature map can draw on every
other, so distant parts of an image (sky and water, both eyes of a face) are
translated consistently. The attention starts switched off (its gain is 0) and
is learnt.
"""

from __future__ import annotations

from torch import nn

from cyclestudio.plugins import GeneratorSpec, hookimpl
from cyclestudio_plugins.resnet_generator import ResnetGenerator, resnet_options


def build(
    in_channels: int, out_channels: int, width: int, blocks: int, norm: str, dropout: bool,
    upsample: str, downsample: str, padding: str,
) -> nn.Module:
    """A ResNet generator with a self-attention layer between its residual blocks."""
    return ResnetGenerator(in_channels, out_channels, width, blocks, norm, dropout, upsample,
                           padding, downsample, attention=True)


@hookimpl
def generators() -> list[GeneratorSpec]:
    """The ResNet generator (9 blocks) with self-attention in the bottleneck."""
    return [
        GeneratorSpec(
            name="resnet_attention",
            title="ResNet + self-attention",
            build=build,
            options=resnet_options(9),
            size_multiple=4,
            min_size=8,  # the attention pools its 1/4-size map by 2 once more
            description=(
                "The paper's ResNet generator with a self-attention layer among the "
                "residual blocks, for consistent translation across distant regions. "
                "Its attention map grows with the square of the image area: 4 million "
                "numbers per image at 256×256 (16 MB in fp32), 67 million at 512×512."
            ),
        )
    ]
