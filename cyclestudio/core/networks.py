"""Building the four networks of a CycleGAN from plugin specs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from cyclestudio.errors import UserError
from cyclestudio.plugins.discovery import Registry, registry
from cyclestudio.plugins.layers import init_weights
from cyclestudio.plugins.spec import ArchitectureSpec


def build_network(spec: ArchitectureSpec, options: Mapping[str, Any], channels: int
                  ) -> nn.Module:
    """A spec's network, built and initialised as training builds it (options resolved)."""
    return _build(spec, options, *([channels] * len(spec.channel_args)))


def _build(arch: ArchitectureSpec, options: Mapping[str, Any], *args: int) -> nn.Module:
    try:
        net = arch.build(*args, **options)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - foreign plugin code
        raise UserError(
            f"plugin '{arch.name}' failed to build its network: {type(exc).__name__}: {exc}",
            f"check the plugin ({arch.source}) or its options",
        ) from exc
    if not isinstance(net, nn.Module):
        raise UserError(
            f"plugin '{arch.name}' returned {type(net).__name__}, not a torch.nn.Module",
            f"fix the plugin's build function ({arch.source})",
        )
    if not arch.keeps_own_init:
        init_weights(net)
    return net


def build_generator(
    name: str,
    options: Mapping[str, Any],
    in_channels: int,
    out_channels: int,
    reg: Registry | None = None,
) -> nn.Module:
    """One generator by plugin name; options are checked against the plugin's spec."""
    arch = (reg or registry()).generator(name)
    return _build(arch, arch.resolve_options(options), in_channels, out_channels)


def build_discriminator(
    name: str, options: Mapping[str, Any], in_channels: int, reg: Registry | None = None
) -> nn.Module:
    """One discriminator by plugin name."""
    arch = (reg or registry()).discriminator(name)
    return _build(arch, arch.resolve_options(options), in_channels)


def check_size(
    name: str, options: Mapping[str, Any], size: int, reg: Registry | None = None
) -> None:
    """Raise UserError if generator ``name`` cannot take ``size``×``size`` crops."""
    arch = (reg or registry()).generator(name)
    multiple = arch.multiple(arch.resolve_options(options))
    if size % multiple:
        lower = max(multiple, size // multiple * multiple)
        raise UserError(
            f"generator {name} needs image sides that are multiples of {multiple}; "
            f"--size {size} is not",
            f"use --size {lower} or {lower + multiple}, or another generator",
        )


def count_parameters(net: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
