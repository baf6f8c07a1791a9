"""Memory and time per iteration of a training configuration, measured before a run.

A short probe builds the four networks on the chosen device and runs real training
steps on random batches of the configured size: the peak memory and the seconds per
step are what the run will see (the data loader aside). The weights and optimiser
state are counted exactly; the rest grows with batch × crop², which says the largest
crop and batch that would fit. On a CPU the peak is the process's resident memory, so
run an estimate in a fresh process (`cyclestudio train ... --estimate`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from cyclestudio.core.devices import available_memory, is_out_of_memory

STEPS = 1  # timed steps after one warm-up step


@dataclass(frozen=True)
class Probe:
    """One configuration measured: peak bytes and seconds per iteration (None: out of memory)."""

    size: int
    batch: int
    peak_bytes: int | None
    seconds: float | None


def _peak_reset(device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        return int(torch.cuda.memory_allocated(device))
    try:  # Linux: forget the process's peak resident size so far
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        pass
    return _resident()


def _resident(field: str = "VmRSS") -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _peak(device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device))
    return _resident("VmHWM")


def probe(config: Any, device: torch.device, reg: Any = None, steps: int = STEPS) -> Probe:
    """Run training steps of ``config`` on random data; measure peak memory and speed."""
    import gc

    from cyclestudio.core.cyclegan import CycleGAN

    size, batch, channels = config.data.size, config.optim.batch_size, config.data.channels
    gc.collect()
    base = _peak_reset(device)
    model = None
    try:
        model = CycleGAN(config, device, 1000, reg)
        g = torch.Generator().manual_seed(0)
        a = torch.rand(batch, channels, size, size, generator=g) * 2 - 1
        b = torch.rand(batch, channels, size, size, generator=g) * 2 - 1
        model.train_step(a, b)  # warm-up: allocations, kernel choices
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            model.train_step(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = (time.perf_counter() - start) / steps
        return Probe(size, batch, max(0, _peak(device) - base), seconds)
    except RuntimeError as exc:
        if not is_out_of_memory(exc):
            raise
        return Probe(size, batch, None, None)
    finally:
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


@dataclass(frozen=True)
class Estimate:
    """What a configuration needs, what the device has, and what would fit."""

    device: str
    size: int
    batch: int
    peak_bytes: int | None
    seconds_per_iteration: float | None
    available_bytes: int
    fits: bool
    largest_size: int | None  # at this batch size
    largest_batch: int | None  # at this crop size
    checkpointing: bool = False  # gradient checkpointing was on in the probe

    def to_json(self) -> dict[str, Any]:
        """For `train --estimate --events` and the app."""
        return dict(self.__dict__)


def _fixed_bytes(config: Any, reg: Any) -> int:
    """Memory that does not grow with the crop: each weight four times (itself, its
    gradient, Adam's two moments) and both image pools once they are full."""
    from cyclestudio.core.networks import build_discriminator, build_generator

    g, d, c = config.generator, config.discriminator, config.data.channels
    with torch.device("meta"):
        nets = [build_generator(g.name, g.options, c, c, reg),
                build_discriminator(d.name, d.options, c, reg)]
    weights = sum(p.numel() * 4 for net in nets for p in net.parameters()) * 2  # 2 of each
    pools = 2 * config.optim.pool_size * c * config.data.size**2 * 4
    return weights * 4 + pools


def estimate(config: Any, device: torch.device, multiple: int, reg: Any = None) -> Estimate:
    """Probe ``config`` on ``device``; work out what fits there.

    The probe's peak is the weights and optimiser state (computed exactly) plus what
    grows with batch × crop²; scaling the second part says what fits. The image pools
    fill up during a run, so they are counted full.
    """
    available = available_memory(device)
    found = probe(config, device, reg)
    fixed = _fixed_bytes(config, reg)
    pixels = config.optim.batch_size * config.data.size**2
    pool_now = 2 * min(2, config.optim.pool_size) * config.data.channels * (
        config.data.size**2) * 4 * config.optim.batch_size
    largest_size = largest_batch = None
    peak = None
    if found.peak_bytes is not None:
        pools_full = 2 * config.optim.pool_size * config.data.channels * config.data.size**2 * 4
        peak = found.peak_bytes - pool_now + pools_full
        per_pixel = max(1.0, (peak - fixed) / pixels)
        room = available * 0.9 - fixed  # slack for the loader and fragmentation
        if room > 0:
            side = math.sqrt(room / (per_pixel * config.optim.batch_size))
            largest_size = int(side) // multiple * multiple or None
            largest_batch = int(room / (per_pixel * config.data.size**2)) or None
    fits = peak is not None and peak <= available * 0.9
    return Estimate(str(device), config.data.size, config.optim.batch_size, peak,
                    found.seconds, available, fits, largest_size, largest_batch,
                    checkpointing=getattr(config.run, "checkpointing", "off") == "on")


def describe(e: Estimate) -> str:
    """An estimate in one or two lines for a person."""
    gib = 2**30
    if e.peak_bytes is None:
        text = f"crop {e.size}, batch {e.batch} does not fit on {e.device}"
    else:
        text = (f"crop {e.size}, batch {e.batch} on {e.device}: about "
                f"{e.peak_bytes / gib:.2f} GiB at its peak, {e.seconds_per_iteration:.2f} s per "
                f"iteration ({e.available_bytes / gib:.1f} GiB available)")
    if not e.fits:
        options = []
        if e.largest_size:
            options.append(f"--size {e.largest_size}")
        if e.largest_batch and e.largest_batch < e.batch:
            options.append(f"--batch-size {e.largest_batch}")
        if options:
            if not e.checkpointing:
                options.append("--checkpointing on (less memory, slower steps)")
            text += "; it will not fit: try " + " or ".join(options)
        else:
            text += "; it will not fit even at the smallest crop: pick a smaller generator" + (
                "" if e.checkpointing else ", or try --checkpointing on")
    return text
