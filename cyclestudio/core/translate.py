"""Translating images of any size: pad to what the generator needs, run, crop back.

Large images go through in overlapping tiles blended with feathered (linear) weights.
A CycleGAN generator normalises with instance norm, whose statistics depend on the
whole image; tiles normalised on their own come out with blotches and visible seams.
So a tiled image is first run whole at a size that fits (the image itself when it
fits, else a downscaled copy) to record every instance norm's mean and variance, and
the tiles are then normalised with those shared statistics. Where the whole image
fits, tiled output matches whole-image output up to small differences at tile edges.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cyclestudio.errors import UserError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MIN_TILE = 64


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


class _SharedInstanceNorm(nn.Module):
    """Stands in for an InstanceNorm2d: records its input statistics or applies recorded ones."""

    def __init__(self, original: nn.InstanceNorm2d) -> None:
        super().__init__()
        self.original = original
        self.eps = original.eps
        self.mode = "native"  # native | record | apply
        self.stats: tuple[Tensor, Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "native" or (self.mode == "apply" and self.stats is None):
            return self.original(x)  # the fastest path on CPU and GPU alike
        if self.mode == "apply":
            assert self.stats is not None
            mean, var = self.stats
        else:
            var, mean = torch.var_mean(x.float(), dim=(2, 3), keepdim=True, correction=0)
            self.stats = (mean, var)
        scale = torch.rsqrt(var + self.eps)
        shift = -mean * scale
        if self.original.affine:
            w = self.original.weight.float().view(1, -1, 1, 1)
            b = self.original.bias.float().view(1, -1, 1, 1)
            scale, shift = scale * w, shift * w + b
        return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))


def _wrap_instance_norms(net: nn.Module) -> list[_SharedInstanceNorm]:
    """Swap every InstanceNorm2d (without running statistics) for a shareable one."""
    wrapped: list[_SharedInstanceNorm] = []
    for name, child in list(net.named_children()):
        if isinstance(child, nn.InstanceNorm2d) and not child.track_running_stats:
            shared = _SharedInstanceNorm(child)
            setattr(net, name, shared)
            wrapped.append(shared)
        elif isinstance(child, _SharedInstanceNorm):
            wrapped.append(child)
        else:
            wrapped += _wrap_instance_norms(child)
    return wrapped


@dataclass(frozen=True)
class TilePlan:
    """How one image is cut: tile side, overlap, and the tile origins along each axis."""

    tile: int
    overlap: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.ys) * len(self.xs)


def _starts(length: int, tile: int, overlap: int, multiple: int) -> tuple[int, ...]:
    """Tile origins along one axis, all multiples of the generator's ``multiple``.

    Origins on the generator's stride grid keep every tile aligned with the
    whole-image computation; the last tile may be shorter (padded like the image end).
    """
    if length <= tile:
        return (0,)
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    last = -(-(length - tile) // multiple) * multiple
    if last > starts[-1]:
        starts.append(last)
    return tuple(starts)


def _axis_weights(length: int, tile: int, overlap: int, starts: Sequence[int]) -> list[np.ndarray]:
    """Per-tile weights along one axis, normalised so they sum to one at every pixel.

    On a side that meets a neighbour, the outer quarter of the overlap gets weight zero
    (its pixels lack context) and the next half ramps up linearly: a feathered seam.
    """
    margin, ramp = overlap // 4, max(1, overlap // 2)
    profile = np.concatenate([np.zeros(margin), (np.arange(ramp) + 0.5) / ramp]).astype(np.float32)
    ws = []
    for s in starts:
        size = min(tile, length - s)
        w = np.ones(size, dtype=np.float32)
        n = min(len(profile), size)
        if s > 0:
            w[:n] = np.minimum(w[:n], profile[:n])
        if s + size < length:
            w[size - n:] = np.minimum(w[size - n:], profile[:n][::-1])
        ws.append(w)
    total = np.zeros(length, dtype=np.float32)
    for s, w in zip(starts, ws, strict=True):
        total[s:s + len(w)] += w
    total = np.maximum(total, 1e-6)
    return [w / total[s:s + len(w)] for s, w in zip(starts, ws, strict=True)]


MIN_SIDE = 32  # tiny images are padded up to this, so every layer has room to pad


def pad_amounts(size: int, multiple: int) -> tuple[int, int]:
    """Padding (before, after) that brings ``size`` up to a multiple (and to MIN_SIDE).

    All of it goes after the image, so the stride grid starts at the image's first
    pixel for whole images and tiles alike.
    """
    target = max(size, MIN_SIDE)
    return 0, target + (-target) % multiple - size


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int, int, int]]:
    """Pad an (N, C, H, W) batch so both sides are multiples; return the crop box."""
    h, w = x.shape[-2:]
    top, bottom = pad_amounts(h, multiple)
    left, right = pad_amounts(w, multiple)
    if top or bottom or left or right:
        # Reflection needs the image to be larger than the padding; replicate otherwise.
        mode = "reflect" if max(top, bottom) < h and max(left, right) < w else "replicate"
        x = F.pad(x, (left, right, top, bottom), mode=mode)
    return x, (top, left, h, w)


class Translator:
    """A loaded model ready to translate arrays of any size, tiling where they are large."""

    def __init__(
        self,
        model: Any,
        device: torch.device,
        precision: str = "auto",
        channels_last: bool | None = None,
        memory_budget: int | None = None,
        compile: bool = False,
    ) -> None:
        self.model = model
        self.info = model.info
        self.device = device
        self.multiple = max(1, int(model.multiple))
        self.channels = int(model.info.channels)
        self.dtype = resolve_precision(precision, device)
        # channels_last helps CUDA tensor cores; on CPU oneDNN was slower with it.
        self.channels_last = device.type == "cuda" if channels_last is None else channels_last
        self._nets: dict[str, nn.Module] = {}
        self._norms: dict[str, list[_SharedInstanceNorm]] = {}
        for direction in ("a2b", "b2a"):
            net = model.generator(direction)
            self._norms[direction] = _wrap_instance_norms(net)
            net = net.to(device=device, dtype=self.dtype)
            if self.channels_last:
                net = net.to(memory_format=torch.channels_last)
            self._nets[direction] = net
        budget = memory_budget or min(available_memory(device) // 3, 2 << 30)
        self.memory_budget = int(budget)
        # torch.compile fuses norm, activation and padding around the convolutions
        # (about 1.3x on a 2-core CPU) but costs ~30 s the first time (cached on disk
        # after); it is used for whole images only, where shapes repeat.
        self.compile = compile
        self._compiled: dict[str, Any] = {}
        self.compile_error: str | None = None
        self.compiled_images = 0  # images that really ran through a compiled graph

    # -- sizes ---------------------------------------------------------------------------

    @property
    def bytes_per_pixel(self) -> int:
        """A conservative estimate of activation memory per input pixel in one pass."""
        width = int(self.info.options.get("width", 64))
        element = 2 if self.dtype in (torch.bfloat16, torch.float16) else 4
        # The widest full-resolution layers hold `width` channels; a few such tensors
        # are alive at once (padding, convolution output, normalisation, skip).
        return max(64, element * width * 10 + 64)

    def max_pixels(self) -> int:
        """The largest image (in pixels) one pass can take within the memory budget."""
        return max(MIN_TILE * MIN_TILE, self.memory_budget // self.bytes_per_pixel)

    def auto_tile(self) -> int:
        """Tile side for `--tile auto`: the largest square that fits, capped for responsiveness."""
        side = int(math.sqrt(self.max_pixels()))
        side = min(side, 2048 if self.device.type == "cuda" else 1024)
        return max(MIN_TILE, side // self.multiple * self.multiple or self.multiple)

    def plan(self, height: int, width: int, tile: int | str | None = "auto") -> TilePlan | None:
        """None to run the image whole, else its tile plan. ``tile``: auto, None/off, or pixels."""
        if tile in (None, "off", 0):
            return None
        if tile == "auto":
            if height * width <= self.max_pixels():
                return None
            side = self.auto_tile()
        else:
            side = max(self.multiple, int(tile) // self.multiple * self.multiple)
            if height <= side and width <= side:
                return None
        overlap = max(self.multiple, min(side // 4, 128) // self.multiple * self.multiple)
        m = self.multiple
        return TilePlan(side, overlap, _starts(height, side, overlap, m),
                        _starts(width, side, overlap, m))

    # -- running -------------------------------------------------------------------------

    def _to_tensor(self, images: Sequence[np.ndarray]) -> Tensor:
        """(H, W, C) uint8/uint16/float arrays in [0, max] → (N, C, H, W) in [-1, 1]."""
        batch = []
        for image in images:
            if image.ndim == 2:
                image = image[:, :, None]
            image = np.ascontiguousarray(image)
            if not image.flags.writeable:  # torch refuses read-only buffers (e.g. from PIL)
                image = image.copy()
            t = torch.from_numpy(image)
            if image.dtype == np.uint8:
                t = t.to(torch.float32).mul_(2 / 255).sub_(1)
            elif image.dtype == np.uint16:
                t = t.to(torch.float32).mul_(2 / 65535).sub_(1)
            else:
                t = t.to(torch.float32).mul_(2).sub_(1)
            batch.append(t.permute(2, 0, 1))
        x = torch.stack(batch).to(self.device, non_blocking=True)
        if x.shape[1] != self.channels:
            raise UserError(
                f"the model takes {self.channels}-channel images, not {x.shape[1]}",
                "convert the image first",
            )
        return x

    def _run(self, direction: str, x: Tensor) -> Tensor:
        """One pass of (N, C, H, W) in [-1, 1] → output in [0, 1] float32, same size."""
        net = self._nets[direction]
        x, (top, left, h, w) = pad_to_multiple(x, self.multiple)
        x = x.to(self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            y = self._forward(direction, net, x)[:, :, top:top + h, left:left + w].float()
            return y.add_(1).mul_(0.5).clamp_(0, 1)

    def _forward(self, direction: str, net: nn.Module, x: Tensor) -> Tensor:
        whole = all(n.mode == "native" for n in self._norms[direction])
        if not (self.compile and whole and self.compile_error is None):
            return net(x)
        compiled = self._compiled.get(direction)
        if compiled is None:
            # fullgraph: the whole generator becomes one graph or compiling fails, never a
            # silent eager run of the parts torch cannot compile (or of everything, past
            # its recompile limit), so compiled_images counts only compiled work.
            compiled = self._compiled[direction] = torch.compile(net, fullgraph=True)
        try:
            # One image at a time keeps a single compiled shape per image size.
            y = torch.cat([compiled(x[i:i + 1]) for i in range(x.shape[0])])
        except Exception as exc:  # noqa: BLE001 - no compiler, unsupported op: run eagerly
            self.compile_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            return net(x)
        self.compiled_images += x.shape[0]
        return y

    def translate_batch(
        self, images: Sequence[np.ndarray], direction: str = "a2b"
    ) -> list[np.ndarray]:
        """Equal-sized images, each run whole, as (H, W, C) float32 arrays in [0, 1]."""
        if not images:
            return []
        try:
            y = self._run(direction, self._to_tensor(images)).cpu()
        except RuntimeError as exc:  # out-of-memory errors are RuntimeErrors
            if not _is_out_of_memory(exc):
                raise
            self._release()
            if len(images) > 1:  # split the batch and try again
                half = len(images) // 2
                return (self.translate_batch(images[:half], direction)
                        + self.translate_batch(images[half:], direction))
            # One image that does not fit whole: go through tiles, smaller each time.
            self._shrink_budget()
            return [self.translate(images[0], direction, "auto")]
        return [im.permute(1, 2, 0).numpy() for im in y]

    def _release(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _shrink_budget(self) -> None:
        smallest = MIN_TILE * MIN_TILE * self.bytes_per_pixel
        if self.memory_budget <= smallest:
            raise UserError(
                f"out of memory on {self.device} even with {MIN_TILE}-pixel tiles",
                "close other programs using the device, or use --device cpu",
            )
        self.memory_budget = max(smallest, self.memory_budget // 2)

    def translate(
        self, image: np.ndarray, direction: str = "a2b", tile: int | str | None = "auto",
        batch_size: int = 4,
    ) -> np.ndarray:
        """One (H, W, C) array (uint8, uint16, or float in [0, 1]) → float32 in [0, 1]."""
        height, width = image.shape[:2]
        plan = self.plan(height, width, tile)
        if plan is None:
            return self.translate_batch([image], direction)[0]
        try:
            return self._translate_tiled(image, direction, plan, batch_size)
        except RuntimeError as exc:  # out-of-memory errors are RuntimeErrors
            if not _is_out_of_memory(exc) or tile != "auto":
                raise
            # Automatic recovery: halve the tiles and run the image again.
            self._release()
            self._shrink_budget()
            return self.translate(image, direction, tile, batch_size)

    @contextmanager
    def _norm_mode(self, direction: str, mode: str) -> Iterator[None]:
        norms = self._norms[direction]
        for n in norms:
            n.mode = mode
        try:
            yield
        finally:
            for n in norms:
                n.mode = "native"

    def _record_statistics(self, image: np.ndarray, direction: str) -> None:
        """Run the whole image (downscaled if it does not fit) and keep its norm statistics."""
        if not self._norms[direction]:
            return
        height, width = image.shape[:2]
        limit = self.max_pixels()
        if height * width > limit:
            from PIL import Image

            scale = math.sqrt(limit / (height * width))
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = _resize(image, size, Image.Resampling.BOX)
        else:
            small = image
        with self._norm_mode(direction, "record"):
            self._run(direction, self._to_tensor([small]))

    def _translate_tiled(
        self, image: np.ndarray, direction: str, plan: TilePlan, batch_size: int
    ) -> np.ndarray:
        height, width = image.shape[:2]
        self._record_statistics(image, direction)
        wy = _axis_weights(height, plan.tile, plan.overlap, plan.ys)
        wx = _axis_weights(width, plan.tile, plan.overlap, plan.xs)
        out = np.zeros((height, width, self.channels), dtype=np.float32)
        # Group tiles by shape (the last row and column may be shorter) to batch them.
        groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for iy, y0 in enumerate(plan.ys):
            for ix, x0 in enumerate(plan.xs):
                shape = (min(plan.tile, height - y0), min(plan.tile, width - x0))
                groups.setdefault(shape, []).append((iy, ix))
        # Batch tiles only as far as the memory budget allows.
        step = max(1, min(batch_size, self.max_pixels() // (plan.tile * plan.tile)))
        with self._norm_mode(direction, "apply"):
            for (th, tw), jobs in groups.items():
                for i in range(0, len(jobs), step):
                    chunk = jobs[i:i + step]
                    tiles = [image[plan.ys[iy]:plan.ys[iy] + th, plan.xs[ix]:plan.xs[ix] + tw]
                             for iy, ix in chunk]
                    results = self._run(direction, self._to_tensor(tiles)).cpu()
                    for (iy, ix), result in zip(chunk, results, strict=True):
                        y0, x0 = plan.ys[iy], plan.xs[ix]
                        weight = (wy[iy][:, None] * wx[ix][None, :])[:, :, None]
                        out[y0:y0 + th, x0:x0 + tw] += result.permute(1, 2, 0).numpy() * weight
        return out


def _is_out_of_memory(exc: BaseException) -> bool:
    # torch.cuda.OutOfMemoryError is in every torch we support; from 2.5 it is an alias of
    # torch.OutOfMemoryError, which every device raises.
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text


def _resize(image: np.ndarray, size: tuple[int, int], resample: Any) -> np.ndarray:
    """Resize an (H, W, C) uint8 or uint16 array with PIL."""
    from PIL import Image

    if image.dtype == np.uint8 and image.shape[2] in (1, 3):
        im = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
        out = np.asarray(im.resize(size, resample))
        return out.reshape(out.shape[0], out.shape[1], -1)
    planes = []
    for c in range(image.shape[2]):
        im = Image.fromarray(image[:, :, c].astype(np.float32), "F")
        planes.append(np.asarray(im.resize(size, resample)).astype(image.dtype))
    return np.stack(planes, axis=2)
