"""Where networks run and at what precision: picking a device, what it can do, how
much memory it has left, and recognising running out of it."""

from __future__ import annotations

import os
from typing import Any

import torch

from cyclestudio.errors import UserError
from cyclestudio.options import PRECISIONS


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


def cpu_has_fast_bf16() -> bool:
    """True where oneDNN runs bf16 convolutions natively (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """auto: bf16 on CUDA cards and CPUs that run it natively, fp32 elsewhere."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}", "use " + ", ".join(PRECISIONS))
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        # bf16 keeps fp32's range (fp16 can overflow inside instance norm); untested on
        # real GPUs so far, so older cards without bf16 stay in fp32.
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    return torch.float32


def available_memory(device: torch.device) -> int:
    """Bytes free for activations on ``device`` (a guess where nothing better is known)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an out-of-memory error from any device (or the host)."""
    # torch.cuda.OutOfMemoryError is in every torch we support; from 2.5 it is an alias of
    # torch.OutOfMemoryError, which every device raises.
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text
