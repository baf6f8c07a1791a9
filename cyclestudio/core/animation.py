"""Animated images (GIF, APNG, animated WebP): every frame in, every frame out.

Each frame is read whole (PIL composes a frame onto what the earlier ones left, so
disposal and partial frames need no handling here), translated like a still image,
and written back as an animation with the input's frame durations and loop count:
animated PNG for ``--format same`` (PNG loses nothing, where GIF would cut every
frame to 256 colours) and ``png``, animated WebP for ``webp``, one page per frame for
``tiff`` (TIFF has no timing), and for JPEG, which holds one frame, the first frame
with a note saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# Formats whose extra frames are an animation (a multi-page TIFF is a stack of pages).
ANIMATED_FORMATS = frozenset({"GIF", "PNG", "WEBP"})


@dataclass
class Animation:
    """Every frame of an animated input, upright and whole, as the model takes them."""

    frames: list[np.ndarray]  # (H, W, C) uint8 each; frames[0] is also Picture.pixels
    alphas: list[np.ndarray] | None  # (H, W) uint8 each, where the animation is transparent
    durations: list[int] = field(default_factory=list)  # milliseconds per frame
    loop: int = 0  # times to play (0: forever)


def is_animated(im: Image.Image) -> bool:
    """True for a GIF, APNG or WebP with more than one frame."""
    return bool(getattr(im, "is_animated", False)) and im.format in ANIMATED_FORMATS


def read_animation(im: Image.Image, channels: int, max_pixels: int) -> Animation:
    """All frames of an opened animated image (ValueError if they are too many pixels)."""
    count = int(getattr(im, "n_frames", 1))
    if count * im.width * im.height > max_pixels:
        raise ValueError(f"{count} frames of {im.width}×{im.height} are over "
                         f"{max_pixels // 1_000_000} megapixels in all")
    # GIF counts repeats after the first play; without its loop block it plays once.
    loop = im.info.get("loop")
    plays = 1 if loop is None else int(loop)
    transparent = False
    frames, alphas, durations = [], [], []
    mode = "RGB" if channels == 3 else "L"
    for index in range(count):
        im.seek(index)
        rgba = im.convert("RGBA")
        alpha = np.array(rgba.getchannel("A"))
        transparent = transparent or bool(alpha.min() < 255)
        frames.append(np.array(rgba.convert(mode)).reshape(im.height, im.width, channels))
        alphas.append(alpha)
        durations.append(int(round(float(im.info.get("duration") or 0))))
    im.seek(0)
    return Animation(frames, alphas if transparent else None, durations, plays)


def write_animation(results: list[np.ndarray], animation: Animation, path: Path,
                    pil_format: str, quality: int, exclusive: bool) -> list[str]:
    """Write translated frames ([0, 1] floats) as an animation; the notes to report."""
    from cyclestudio.core.imagecodec import write_image_atomic

    images = []
    for index, result in enumerate(results):
        arr = np.rint(np.clip(result, 0, 1) * 255).astype(np.uint8)
        frame = Image.fromarray(arr[:, :, 0], "L") if arr.shape[2] == 1 else Image.fromarray(
            arr, "RGB")
        if animation.alphas is not None and pil_format != "JPEG":
            frame.putalpha(Image.fromarray(animation.alphas[index], "L"))
        images.append(frame)
    count = len(images)
    if pil_format == "JPEG":
        write_image_atomic(images[0], path, pil_format, exclusive, quality=quality)
        return [f"JPEG holds one frame: only the first of {count} frames was written "
                "(choose PNG or WebP to keep the animation)"]
    kwargs: dict[str, Any] = {"save_all": True, "append_images": images[1:]}
    if pil_format in ("PNG", "WEBP"):
        kwargs.update(duration=animation.durations, loop=animation.loop)
        if pil_format == "WEBP":
            kwargs.update(quality=quality, lossless=quality >= 100)
        note = f"animated: all {count} frames translated, their timing and loop kept"
    else:  # TIFF: one page per frame
        note = f"all {count} frames translated, as TIFF pages (TIFF keeps no timing)"
    write_image_atomic(images[0], path, pil_format, exclusive, **kwargs)
    return [note]
