"""Noticing a run going wrong (the CycleGAN FAQ's failure modes) and saying what to try.

Two signs are watched: a discriminator whose loss has collapsed to ~0 (it wins
outright, so its generator gets no useful gradient), and a generator that gives
nearly the same image for every input (mode collapse). Each warning is given once,
and again only after the sign has gone away and come back.
"""

from __future__ import annotations

from collections import deque

import torch

D_COLLAPSE = 0.005  # a D loss this low (LSGAN scale) for a sustained stretch
D_PATIENCE = 5  # consecutive logged intervals
WARMUP = 200  # iterations before judging at all
SAMENESS = 0.1  # fakes differ from each other < 10% as much as the real images do


class Health:
    """Feed it logged losses and sample grids; it returns warnings to show."""

    def __init__(self, warmup: int = WARMUP) -> None:
        self.warmup = warmup
        self._low: dict[str, deque[bool]] = {}
        self._active: set[str] = set()

    def _once(self, key: str, condition: bool, message: str) -> list[str]:
        if condition and key not in self._active:
            self._active.add(key)
            return [message]
        if not condition:
            self._active.discard(key)
        return []

    def losses(self, iteration: int, losses: dict[str, float]) -> list[str]:
        """Warnings from one logged interval's mean losses."""
        warnings: list[str] = []
        for d, g, judged in (("D_A", "G_A", "B"), ("D_B", "G_B", "A")):
            if d not in losses:
                continue
            window = self._low.setdefault(d, deque(maxlen=D_PATIENCE))
            window.append(iteration >= self.warmup and losses[d] < D_COLLAPSE)
            collapsed = len(window) == D_PATIENCE and all(window)
            warnings += self._once(
                d, collapsed,
                f"{d} has fallen to about 0 since iteration {iteration}: the discriminator for "
                f"domain {judged} wins outright and {g} gets no useful gradient. Try a lower "
                "discriminator learning rate (--lr-d), --gan-loss lsgan, or a smaller "
                "discriminator (--discriminator-option n_layers=2)",
            )
        return warnings

    def samples(self, iteration: int, grid: torch.Tensor) -> list[str]:
        """Warnings from a sample grid (N, 6, C, H, W): are the fakes all alike?"""
        if iteration < self.warmup or grid.shape[0] < 2:
            return []
        warnings: list[str] = []
        for col_real, col_fake, name in ((0, 1, "G_A (A→B)"), (3, 4, "G_B (B→A)")):
            real, fake = grid[:, col_real].float(), grid[:, col_fake].float()
            spread_real = _spread(real)
            same = spread_real > 0.05 and _spread(fake) < SAMENESS * spread_real
            warnings += self._once(
                name, same,
                f"{name} gives nearly the same image for every input at iteration {iteration} "
                "(mode collapse). Try a higher --lambda-cycle, a lower learning rate, or "
                "resume from an earlier checkpoint",
            )
        return warnings


def _spread(images: torch.Tensor) -> float:
    """Mean absolute difference between each image and the batch's mean image."""
    return float((images - images.mean(0, keepdim=True)).abs().mean())
