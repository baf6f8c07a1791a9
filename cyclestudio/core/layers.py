"""Building blocks shared by architecture plugins (built-in and third-party)."""

from __future__ import annotations

from torch import nn

NORMS = ("instance", "batch", "none")
UPSAMPLES = ("transposed", "resize")
PADDINGS = ("reflect", "replicate", "zero")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The paper's normalisation: instance norm without affine parameters, or batch norm."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; use one of {', '.join(NORMS)}")


def uses_bias(norm: str) -> bool:
    """Convolutions before a batch norm need no bias; before instance norm they keep one."""
    return norm != "batch"


def upsample_layer(
    kind: str, in_channels: int, out_channels: int, kernel_size: int, bias: bool
) -> list[nn.Module]:
    """Double the resolution: transposed convolution, or resize then convolve.

    Resize-convolution (nearest-neighbour upsampling followed by a 3×3 convolution)
    avoids the checkerboard artifacts of transposed convolutions.
    """
    if kind == "transposed":
        padding, output_padding = (1, 1) if kernel_size == 3 else (1, 0)
        return [
            nn.ConvTranspose2d(
                in_channels, out_channels, kernel_size, stride=2,
                padding=padding, output_padding=output_padding, bias=bias,
            )
        ]
    if kind == "resize":
        return [
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.ReflectionPad2d(1),
            nn.Conv2d(in_channels, out_channels, 3, padding=0, bias=bias),
        ]
    raise ValueError(f"unknown upsampling {kind!r}; use one of {', '.join(UPSAMPLES)}")


def padding_layer(kind: str, amount: int) -> tuple[list[nn.Module], int]:
    """A padding module and the padding the following convolution still needs."""
    if kind == "reflect":
        return [nn.ReflectionPad2d(amount)], 0
    if kind == "replicate":
        return [nn.ReplicationPad2d(amount)], 0
    if kind == "zero":
        return [], amount
    raise ValueError(f"unknown padding {kind!r}; use one of {', '.join(PADDINGS)}")
