"""Translating images of any size: pad to what the generator needs, run, crop back.

Large images go through in overlapping tiles blended with feathered (linear) weights
(core/tiling.py). Instance norm's statistics depend on the whole image, so a tiled
image is first run whole at a size that fits (the image itself when it fits, else a
downscaled copy) to record every norm's mean and variance, and the tiles are then
normalised with those shared statistics (core/shared_norm.py). Where the whole image
fits, tiled output matches whole-image output up to small differences at tile edges.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cyclestudio.core.devices import available_memory, is_out_of_memory, resolve_precision
from cyclestudio.core.shared_norm import SharedInstanceNorm, wrap_instance_norms
from cyclestudio.core.tiling import MIN_TILE, TilePlan, axis_weights, pad_to_multiple, tile_starts
from cyclestudio.errors import UserError


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
        self._norms: dict[str, list[SharedInstanceNorm]] = {}
        for direction in ("a2b", "b2a"):
            net = model.generator(direction)
            self._norms[direction] = wrap_instance_norms(net)
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
        return TilePlan(side, overlap, tile_starts(height, side, overlap, m),
                        tile_starts(width, side, overlap, m))

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
            if not is_out_of_memory(exc):
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
            if not is_out_of_memory(exc) or tile != "auto":
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
        wy = axis_weights(height, plan.tile, plan.overlap, plan.ys)
        wx = axis_weights(width, plan.tile, plan.overlap, plan.xs)
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
