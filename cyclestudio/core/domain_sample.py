"""What the starts read from a domain's training images before the first step.

The colour start (core/colour_start.py) needs pixel colours and the sharpness start
(core/sharpness_start.py) the images' power spectra; both come from one pass over up to
IMAGES images a domain, so a project of large photos is decoded once, not twice.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cyclestudio.core.config import DataConfig
from cyclestudio.core.data import load_pixels, prepare
from cyclestudio.errors import UserError

IMAGES = 256  # at most this many images a domain are read
WINDOW = 64  # side of the square the spectra are taken over (smaller training sizes: that)


@dataclass(frozen=True)
class DomainSample:
    """Per image read: its sampled colours, (pixels, C) in [-1, 1], and the power spectrum
    of the centre of its prepared (training-scale) version, (n, n) with n = ``window``
    (``power_spectrum``; None where the prepared image is smaller)."""

    colours: list[np.ndarray]
    spectra: list[np.ndarray | None]
    window: int


def spectrum_window(data: DataConfig) -> int:
    """The spectra's side: WINDOW, or the training crop where that is smaller (even)."""
    return max(2, min(WINDOW, data.size) // 2 * 2)


def hann(n: int) -> np.ndarray:
    """A 2-D Hann window: the image's borders do not leak into the spectrum."""
    w = np.hanning(n + 2)[1:-1]  # no zero ends: every pixel counts a little
    return w[:, None] * w[None, :]


def power_spectrum(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Mean over channels of |FFT|² of a (C, n, n) image in [-1, 1], each channel's mean
    removed and windowed; scaled so that white noise of variance σ² has σ² in every
    frequency (its bins' mean is the pixels' variance)."""
    x = image - image.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(x * window[None], axes=(1, 2))) ** 2
    return power.mean(0) / float((window**2).sum())


def read_domain(paths: Sequence[Path], data: DataConfig, count: int, rng: random.Random,
                spectra: bool, multiple: int = 4) -> DomainSample:
    """``count`` pixel colours from up to IMAGES of ``paths`` (spread evenly over the
    images), and with ``spectra`` each image's power spectrum at training scale."""
    chosen = sorted(rng.sample(range(len(paths)), min(IMAGES, len(paths))))
    each = math.ceil(count / len(chosen))
    n = spectrum_window(data)
    window = hann(n)
    colours: list[np.ndarray] = []
    powers: list[np.ndarray | None] = []
    for i in chosen:
        try:
            image = load_pixels(paths[i], data)
        except Exception as exc:  # noqa: BLE001 - a file changed after the scan
            raise UserError(f"{paths[i]} can no longer be read: {exc}",
                            "remove it and start the run again"
                            ) from exc
        flat = image.reshape(image.shape[0], -1).T.numpy()
        picks = rng.sample(range(len(flat)), min(each, len(flat)))
        colours.append(flat[picks].astype(np.float64) / 127.5 - 1.0)
        if spectra:
            prepared = prepare(image, data, None, multiple)  # deterministic: centre crop
            h, w = prepared.shape[-2:]
            if h < n or w < n:
                powers.append(None)
                continue
            top, left = (h - n) // 2, (w - n) // 2
            crop = prepared[:, top:top + n, left:left + n].numpy().astype(np.float64)
            powers.append(power_spectrum(crop / 127.5 - 1.0, window))
    return DomainSample(colours, powers, n)
