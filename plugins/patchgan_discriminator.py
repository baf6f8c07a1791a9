"""PatchGAN discriminator: classifies overlapping patches (70×70 with 3 layers) as real or fake."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as add_spectral_norm

from cyclestudio.plugins import DiscriminatorSpec, Option, hookimpl
from cyclestudio.plugins.layers import NORMS, init_weights, norm_layer, uses_bias


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


def finish(net: nn.Module, spectral_norm: bool) -> nn.Module:
    """The paper's initialisation, then spectral normalisation of every convolution if asked.

    The spec keeps its own initialisation because spectral norm must see the
    initialised weights (its power iteration starts from them).
    """
    init_weights(net)
    if spectral_norm:
        for module in list(net.modules()):
            if isinstance(module, nn.Conv2d):
                add_spectral_norm(module)
    return net


def patchgan_min_size(options: Mapping[str, Any]) -> int:
    """Each strided layer halves the image and the last two 4×4 layers take 3 pixels."""
    return 3 * 2 ** int(options["n_layers"])


def patchgan_options() -> list[Option]:
    """The PatchGAN options (shared with the multi-scale PatchGAN)."""
    return [
        Option("width", int, 64, "Channels of the first layer (ndf)", min=1, max=1024),
        Option(
            "n_layers", int, 3,
            "Strided layers: 1 → 16×16 patches, 2 → 34×34, 3 → 70×70, 4 → 142×142",
            min=1, max=6,
        ),
        Option("norm", str, "instance", "Normalisation layer", choices=NORMS),
        Option(
            "spectral_norm", bool, False,
            "Spectral normalisation of every convolution (Miyato et al. 2018): bounds how "
            "fast the discriminator can change, which steadies training, above all with "
            "the hinge loss; usually combined with norm none",
        ),
    ]


def build(in_channels: int, width: int, n_layers: int, norm: str, spectral_norm: bool
          ) -> nn.Module:
    """A PatchGAN discriminator with the given options."""
    return finish(NLayerDiscriminator(in_channels, width, n_layers, norm), spectral_norm)


@hookimpl
def discriminators() -> list[DiscriminatorSpec]:
    """The paper's 70×70 PatchGAN (n_layers sets the patch size)."""
    return [
        DiscriminatorSpec(
            name="patchgan",
            title="PatchGAN",
            build=build,
            options=patchgan_options(),
            min_size=patchgan_min_size,
            keeps_own_init=True,
            description="Scores overlapping image patches as real or fake (70×70 by default).",
        )
    ]
