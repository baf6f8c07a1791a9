"""Building the four networks of a CycleGAN from plugin specs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
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


def pick_device(requested: str = "auto") -> torch.device:
    """auto: CUDA, then Apple MPS, then CPU. An explicit device must exist."""
    requested = (requested or "auto").strip().lower()
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda:0")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise UserError(
            f"--device {requested} is not a device", "use auto, cpu, cuda, cuda:N or mps"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA GPU is available", "use --device cpu or auto")
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise UserError(
                f"--device {requested}: there are only {torch.cuda.device_count()} CUDA devices",
                "use cuda:0",
            )
        return torch.device("cuda", index)
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise UserError("--device mps: Apple MPS is not available here", "use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"--device {requested} is not supported", "use auto, cpu, cuda:N or mps")
    return device


def list_devices() -> list[dict[str, Any]]:
    """The devices training can use, for `cyclestudio devices --json` and the app."""
    devices: list[dict[str, Any]] = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            devices.append(
                {"id": f"cuda:{i}", "name": props.name, "memory_bytes": int(props.total_memory)}
            )
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        devices.append({"id": "mps", "name": "Apple GPU (MPS)", "memory_bytes": None})
    import os

    devices.append({"id": "cpu", "name": f"CPU ({os.cpu_count()} cores)", "memory_bytes": None})
    return devices
