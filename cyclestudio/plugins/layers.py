"""Building blocks for architecture plugins, built-in and third-party: part of the plugin API.

Each helper takes the value of an option (``norm="instance"``, ``upsample="resize"``…),
so a plugin can offer the same choices as the built-ins by reusing the tuples below
as its options' ``choices``. The helpers return modules (or lists of modules to put
in an ``nn.Sequential``) and raise ``ValueError`` for a value they do not know.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812 - the usual name

NORMS = ("instance", "batch", "none")
UPSAMPLES = ("transposed", "resize")
DOWNSAMPLES = ("strided", "blurpool")
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


def _standard_ops_only() -> bool:
    """True while tracing (ONNX and TorchScript export) or compiling: other runtimes and
    torch's compiler know the standard operators, and do their own fusing."""
    return (torch.jit.is_tracing() or torch.jit.is_scripting()
            or torch.compiler.is_compiling())


def _fast_on_cpu(x: Tensor) -> bool:
    return x.device.type == "cpu" and x.is_contiguous() and not _standard_ops_only()


class NearestUpsample2x(nn.Module):
    """Nearest-neighbour upsampling by 2, as ``nn.Upsample(scale_factor=2)`` computes it.

    On the CPU one broadcast copy does it 3× faster than torch's upsampling kernel (4.7 →
    1.5 ms for a batch of 16 at 16², measured): the same values, and no parameters, so
    it replaces ``nn.Upsample`` in saved networks without changing their weights.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not _fast_on_cpu(x) or x.dim() != 4:
            return F.interpolate(x, scale_factor=2, mode="nearest")
        n, c, h, w = x.shape
        return x[:, :, :, None, :, None].expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)


class PointwiseConv2d(nn.Conv2d):
    """A 1×1 convolution (a per-pixel linear map) that runs as a batched matrix product
    on the CPU, where oneDNN's 1×1 convolution is 3–10× slower for few channels (15 → 4 ms
    for 32 → 32 channels, 13 → 1.2 ms for 3 → 32, batch 16 at 64², measured). Same
    parameters and state-dict keys as ``nn.Conv2d(in, out, 1)``."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        if not _fast_on_cpu(x) or x.dim() != 4 or x.dtype != self.weight.dtype:
            return super().forward(x)
        n, c, h, w = x.shape
        weight = self.weight.view(self.out_channels, c).expand(n, -1, -1)
        flat = x.view(n, c, h * w)
        if self.bias is None:
            y = torch.bmm(weight, flat)
        else:
            y = torch.baddbmm(self.bias.view(1, -1, 1).expand(n, -1, h * w), weight, flat)
        return y.view(n, self.out_channels, h, w)


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
            NearestUpsample2x(),
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


class BlurPool2d(nn.Module):
    """Anti-aliased down-sampling (Zhang, 2019): a fixed [1, 2, 1]² blur, then stride 2.

    The blur is a constant buffer, not a parameter; it removes the high frequencies
    that a plain stride would alias, so the output shifts less when the input does.
    Sides are halved exactly as a 3×3, stride-2, padding-1 convolution halves them.
    """

    def __init__(self, channels: int, stride: int = 2) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(taps, taps) / 16
        self.channels, self.stride = channels, stride
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).clone(),
                             persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(x, self.kernel.to(x.dtype), stride=self.stride, groups=self.channels)


def downsample_block(
    kind: str, in_channels: int, out_channels: int, norm: str = "instance",
    activation: nn.Module | None = None,
) -> list[nn.Module]:
    """Halve the resolution: convolution, norm and activation, anti-aliased or not.

    ``strided``: the paper's 3×3 convolution with stride 2. ``blurpool``: a 3×3
    convolution with stride 1, the norm and activation, then ``BlurPool2d``
    (anti-aliased, Zhang 2019). The activation defaults to ReLU.
    """
    act = activation if activation is not None else nn.ReLU(True)
    bias = uses_bias(norm)
    if kind == "strided":
        return [nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=bias),
                norm_layer(norm, out_channels), act]
    if kind == "blurpool":
        return [nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=bias),
                norm_layer(norm, out_channels), act, BlurPool2d(out_channels)]
    raise ValueError(f"unknown downsampling {kind!r}; use one of {', '.join(DOWNSAMPLES)}")


class SelfAttention2d(nn.Module):
    """Self-attention over all positions of a feature map (SAGAN, Zhang et al. 2019).

    Queries and keys have ``channels // reduction`` channels; keys and values are
    max-pooled 2×2, so the cost is (H·W)²/4 per image. The output is
    ``x + gamma · attention(x)`` with ``gamma`` learnt from 0: the block starts as
    the identity and mixes in long-range context as training goes. Needs H, W ≥ 2.
    """

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        inner = max(1, channels // reduction)
        self.query = nn.Conv2d(channels, inner, 1, bias=False)
        self.key = nn.Conv2d(channels, inner, 1, bias=False)
        self.value = nn.Conv2d(channels, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2)  # n, inner, hw
        k = F.max_pool2d(self.key(x), 2).flatten(2)  # n, inner, hw/4
        v = F.max_pool2d(self.value(x), 2).flatten(2)  # n, c, hw/4
        attention = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # n, hw, hw/4
        out = (v @ attention.transpose(1, 2)).view(n, c, h, w)
        return x + self.gamma * out


def init_weights(net: nn.Module, gain: float = 0.02) -> None:
    """The paper's initialisation: conv and linear weights ~ N(0, gain), biases 0,
    batch-norm scales ~ N(1, gain).

    cyclestudio applies it to every network it builds unless the spec sets
    ``keeps_own_init=True``; such a plugin may call it itself (e.g. before adding
    spectral normalisation). Weights under a parametrization (spectral norm) are
    initialised through it.
    """
    from torch.nn.utils import parametrize

    def weight_of(m: nn.Module) -> Tensor | None:
        if parametrize.is_parametrized(m, "weight"):
            return m.parametrizations.weight.original  # type: ignore[union-attr]
        if isinstance(getattr(m, "weight_orig", None), Tensor):  # old-style spectral_norm
            return m.weight_orig  # type: ignore[return-value]
        weight = getattr(m, "weight", None)
        return weight if isinstance(weight, Tensor) else None

    def init(m: nn.Module) -> None:
        name = type(m).__name__
        weight = weight_of(m)
        if weight is None or weight.is_meta:  # a shape-only build: nothing to draw
            return
        if "Conv" in name or "Linear" in name:
            nn.init.normal_(weight, 0.0, gain)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif "BatchNorm2d" in name:
            nn.init.normal_(weight, 1.0, gain)
            nn.init.zeros_(m.bias)

    net.apply(init)
