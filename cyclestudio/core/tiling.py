"""Cutting an image into overlapping tiles on the generator's stride grid, blending them
back with feathered weights, and padding any size up to what a generator accepts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch.nn.functional as F
from torch import Tensor

MIN_TILE = 64


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


def tile_starts(length: int, tile: int, overlap: int, multiple: int) -> tuple[int, ...]:
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


def axis_weights(length: int, tile: int, overlap: int, starts: Sequence[int]) -> list[np.ndarray]:
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
