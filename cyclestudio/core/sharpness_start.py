"""The sharpness start: generators that begin at the blur or sharpening the domains show.

Where one domain is a blurred (or sharpened) version of the other, the difference is in
how much detail the images have at each scale, which their power spectra measure without
any pairs: if B = h * A + noise for a filter h, B's spectrum is |H|² times A's plus the
noise's. A generator that starts as the identity has to find that filter through the
discriminator's gradients; on the benchmark's blur task `fast` sharpened for a few
minutes, then oversharpened, and never beat the untranslated input by 4 CPU-minutes.
Read before the first step instead:

1. The power spectrum of the centre of each training image at training scale (at most
   256 images a domain, the same pass as the colour start's; a 64×64 Hann window, or the
   crop size where that is smaller), averaged per domain and over each ring of
   frequencies (the same at every orientation: a lens's or a resize's blur, not a
   motion's): S_A and S_B. Averaged over orientations, a change of shape (circles to
   squares) no longer reads as a filter; per orientation it did. Content that adds
   detail at every orientation (stripes in one domain only) still does, and starts.
2. The noise N: four times the faintest detail either domain shows (the smallest ring),
   at least 8-bit rounding's. Detail near it cannot be told from noise, so it is
   neither amplified nor trusted; the margin is for noise that is not white (a resized,
   re-rounded image's), measured at +1.7 dB sharpening the blur task at training scale
   against one times, about −0.2 dB at its native scale.
3. For X→Y the response K = √((S_Y − N)(S_X − N)) / S_X at each frequency: |H| where X is
   the sharp one, and the Wiener inverse of the blur (which stops amplifying where X's
   detail sinks into its noise) where X is the blurred one. The lowest frequencies are
   scaled to 1 (a change of contrast is the colour start's), the mean stays as it is.
4. The k×k filter (the generator's ``filter_branch``: `fast`'s is 7×7) closest to K,
   weighted by X's spectrum (least squares over all frequencies), normalised to keep the
   mean colour; the branch is set to it minus the identity. Training leaves it there
   (the built-in branch is a buffer, not a parameter); the body learns around it.

It only applies where the domains' detail differs. Like is compared with like, as in the
colour start: how much the filter designed between halves of the two domains would
change an image (the share of its detail's power that moves, ∑ S|K − 1|² / ∑ S), against
the same for a filter designed between the two halves of one domain, which is what
sampling and content alone give. Above MARGIN times that, and above MIN_CHANGE, it
applies; otherwise nothing changes. Measured in benchmarks/README.md ("The sharpness
start").
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from cyclestudio.core.domain_sample import DomainSample

MARGIN = 2.0  # the domains' detail differs when the change is this many times the floor
MIN_CHANGE = 0.005  # and moves at least this share of the detail's power
NOISE_MARGIN = 4.0  # the noise is taken as this many times the faintest ring
QUANTISATION = (2 / 255) ** 2 / 12  # 8-bit rounding's variance, in the models' [-1, 1]


@dataclass(frozen=True)
class SharpnessStart:
    """What the sharpness start did (the ``sharpness_start`` field of the started event)."""

    applied: bool
    change: float  # share of detail power a filter between halves of the domains moves
    floor: float  # the same between the two halves of one domain (A's and B's mean)
    gains: tuple[float, float]  # A→B's and B→A's gain at a quarter of the sampling rate
    seconds: float  # CPU time it took (process time), reading the images aside
    note: str  # what it means, in words
    no_branch: bool = False  # skipped because the generator has no filter branch

    def to_json(self) -> dict[str, Any]:
        return {"applied": self.applied, "change": round(self.change, 5),
                "floor": round(self.floor, 5),
                "gains": [round(g, 3) for g in self.gains],
                "seconds": round(self.seconds, 2), "note": self.note}


def filter_branches(model: Any) -> list[nn.Module] | None:
    """G_A's and G_B's filter branches, or None when the generator has none."""
    branches = [getattr(model.nets[key], "filter_branch", None) for key in ("G_A", "G_B")]
    ok = all(isinstance(b, nn.Module) and getattr(b, "weight", None) is not None
             for b in branches)
    return branches if ok else None


NO_BRANCH = SharpnessStart(False, 0.0, 0.0, (1.0, 1.0), 0.0,
                           "the generator has no filter branch (the resnet generators' "
                           "filter_branch, with residual), so it starts as it is",
                           no_branch=True)


def _rings(n: int) -> np.ndarray:
    """Each frequency's ring: its distance from zero in steps of 1/n, rounded."""
    f = np.fft.fftfreq(n)
    return np.round(np.hypot(f[:, None], f[None, :]) * n).astype(int)


def ring_mean(spectrum: np.ndarray) -> np.ndarray:
    """``spectrum`` with each frequency replaced by its ring's mean (orientation dropped)."""
    rings = _rings(spectrum.shape[0])
    means = np.bincount(rings.ravel(), spectrum.ravel()) / np.bincount(rings.ravel())
    return means[rings]


def noise_level(*spectra: np.ndarray) -> float:
    """NOISE_MARGIN × the faintest ring of frequencies in any of ``spectra`` (ring means),
    at least 8-bit rounding's."""
    rings = _rings(spectra[0].shape[0])
    faintest = min(float(s[rings == r].mean())
                   for s in spectra for r in range(1, spectra[0].shape[0] // 2 + 1))
    return NOISE_MARGIN * max(QUANTISATION, faintest)


def response(s_x: np.ndarray, s_y: np.ndarray, noise: float) -> np.ndarray:
    """The frequency response taking X's detail to Y's (step 3 of the docstring)."""
    k = np.sqrt(np.maximum(s_y - noise, 0) * np.maximum(s_x - noise, 0)) / s_x
    rings = _rings(s_x.shape[0])
    low = k[(rings >= 1) & (rings <= 2)].mean()
    k = k / low if low > 0 else np.ones_like(k)
    k[0, 0] = 1.0
    return k


def _basis(n: int, size: int) -> np.ndarray:
    """(n², size²): each kernel tap's contribution to each frequency's response."""
    f = np.fft.fftfreq(n)
    r = size // 2
    taps = [(i, j) for i in range(-r, r + 1) for j in range(-r, r + 1)]
    return np.stack([np.exp(-2j * np.pi * (f[:, None] * i + f[None, :] * j)).ravel()
                     for i, j in taps], 1)


def design(s_x: np.ndarray, s_y: np.ndarray, noise: float, size: int) -> np.ndarray:
    """The size×size filter for X→Y (steps 3–4), summing to 1."""
    target = response(s_x, s_y, noise).ravel()
    basis = _basis(s_x.shape[0], size)
    weight = np.sqrt(s_x.ravel())[:, None]
    m, y = basis * weight, target * weight[:, 0]
    taps, *_ = np.linalg.lstsq(np.concatenate([m.real, m.imag]),
                               np.concatenate([y.real, y.imag]), rcond=None)
    kernel = taps.reshape(size, size)
    total = kernel.sum()
    return kernel / total if abs(total) > 1e-6 else _identity(size)


def _identity(size: int) -> np.ndarray:
    kernel = np.zeros((size, size))
    kernel[size // 2, size // 2] = 1.0
    return kernel


def _frequency(kernel: np.ndarray, n: int) -> np.ndarray:
    return (_basis(n, kernel.shape[0]) @ kernel.ravel()).reshape(n, n)


def change(kernel: np.ndarray, s_x: np.ndarray) -> float:
    """The share of X's detail power the filter moves: ∑ S|K − 1|² / ∑ S."""
    k = _frequency(kernel, s_x.shape[0])
    return float((s_x * np.abs(k - 1) ** 2).sum() / s_x.sum())


def gain(kernel: np.ndarray, n: int) -> float:
    """The filter's mean gain on the ring at a quarter of the sampling rate."""
    rings = _rings(n)
    return float(np.abs(_frequency(kernel, n))[rings == n // 4].mean())


def _mean(spectra: list[np.ndarray]) -> np.ndarray:
    """The domain's spectrum: the images' mean, over each ring."""
    return ring_mean(np.mean(spectra, axis=0))


def sharpness_start(model: Any, sample_a: DomainSample, sample_b: DomainSample
                    ) -> SharpnessStart:
    """Set the generators' filter branches to the filter the domains' detail shows, where
    it differs (module docstring). ``model`` is a CycleGAN; the caller copies the
    generators into their weight averages (core/starts.py)."""
    started = time.process_time()
    branches = filter_branches(model)
    if branches is None:
        return NO_BRANCH
    spectra_a = [s for s in sample_a.spectra if s is not None]
    spectra_b = [s for s in sample_b.spectra if s is not None]
    if len(spectra_a) < 2 or len(spectra_b) < 2:
        return SharpnessStart(False, 0.0, 0.0, (1.0, 1.0), time.process_time() - started,
                              f"fewer than two images a domain are {sample_a.window} px "
                              "or larger at training scale, so the generators start as "
                              "the identity")
    size = branches[0].weight.shape[-1]
    s_a, s_b = _mean(spectra_a), _mean(spectra_b)
    noise = noise_level(s_a, s_b)
    # Like with like: halves of the two domains, and the two halves of each domain.
    a1, a2 = _mean(spectra_a[: len(spectra_a) // 2]), _mean(spectra_a[len(spectra_a) // 2:])
    b1, b2 = _mean(spectra_b[: len(spectra_b) // 2]), _mean(spectra_b[len(spectra_b) // 2:])
    between = (change(design(a1, b2, noise, size), a1)
               + change(design(a2, b1, noise, size), a2)) / 2
    floor = (change(design(a1, a2, noise, size), a1)
             + change(design(b1, b2, noise, size), b1)) / 2
    if between <= MARGIN * floor or between <= MIN_CHANGE:
        return SharpnessStart(False, between, floor, (1.0, 1.0),
                              time.process_time() - started,
                              "the domains' detail differs no more than two halves of one "
                              "domain's does, so the generators start as the identity")
    kernels = design(s_a, s_b, noise, size), design(s_b, s_a, noise, size)
    for branch, kernel in zip(branches, kernels, strict=True):
        with torch.no_grad():
            weight = branch.weight
            change_of = torch.as_tensor(kernel - _identity(size), dtype=weight.dtype,
                                        device=weight.device)
            weight.copy_(change_of.expand_as(weight))
    gains = gain(kernels[0], s_a.shape[0]), gain(kernels[1], s_a.shape[0])
    return SharpnessStart(True, between, floor, gains, time.process_time() - started,
                          f"the generators start at the {_word(gains[0])} A→B and the "
                          f"{_word(gains[1])} B→A the domains' detail shows")


def _word(g: float) -> str:
    return "blur" if g < 1 else "sharpening"
