"""Image quality against a ground truth: PSNR and SSIM on [0, 1] images."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def psnr(image: np.ndarray, truth: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for [0, 1] arrays of equal shape (inf if equal)."""
    mse = float(np.mean((image.astype(np.float64) - truth.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def _gaussian(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(image: np.ndarray, truth: np.ndarray) -> float:
    """Mean structural similarity (Wang et al. 2004: 11×11 Gaussian, σ 1.5), per channel."""
    a = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float64))
    b = torch.from_numpy(np.ascontiguousarray(truth, dtype=np.float64))
    if a.ndim == 2:
        a, b = a[:, :, None], b[:, :, None]
    a, b = a.permute(2, 0, 1)[:, None], b.permute(2, 0, 1)[:, None]  # (C, 1, H, W)
    size = min(11, a.shape[-1], a.shape[-2])
    size -= 1 - size % 2  # odd
    g = _gaussian(size, 1.5 * size / 11)
    kernel_h, kernel_w = g.view(1, 1, -1, 1), g.view(1, 1, 1, -1)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, kernel_h), kernel_w)

    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return float(s.mean())
