"""Noticing a run going wrong (the CycleGAN FAQ's failure modes) and saying what to try.

Signs watched in the losses and samples: a discriminator that has won outright (its
loss has fallen to about 0, so its generator learns little from it), and a generator
that gives nearly the same image for every input (mode collapse). In the validation
figures: generators that leave their inputs unchanged, translations further from the
truth than the untranslated images (without truth: further from the target domain than
the untranslated images), and inverted brightness. Each warning is given once,
and again only after the sign has gone away and come back.

"About 0" depends on the GAN loss. The discriminator losses of lsgan, vanilla and
hinge are bounded below by 0, reached when D scores every real and every fake
correctly by a margin; each is judged against its own chance level (what the loss is
when D cannot tell real from fake at all). A WGAN-GP critic's loss estimates minus
the distance between real and fake images, plus the gradient penalty: it is negative
in a healthy run, has no "won outright" level, and the penalty keeps the generator's
gradient useful, so it is not judged (mode collapse still is).
"""

from __future__ import annotations

import math
from collections import deque

import torch

# The discriminator loss (the mean of its real and fake terms, as core/cyclegan.py
# reports it) when D scores everything 0 (vanilla, hinge) or 0.5 (lsgan); None where
# the loss has no level at which D has won.
CHANCE: dict[str, float | None] = {"lsgan": 0.25, "vanilla": math.log(2), "hinge": 1.0,
                                   "wgangp": None}
D_COLLAPSE = 0.02  # a D loss under 2% of its chance level for a sustained stretch
D_PATIENCE = 5  # consecutive logged intervals
WARMUP = 200  # iterations before judging at all
SAMENESS = 0.1  # fakes differ from each other < 10% as much as the real images do
IDLE = 0.004  # translations that change their inputs by under 0.4% on average
INVERTED = -0.5  # input and translation brightness anti-correlated this strongly
# Translations this much further from their target domain than the untranslated inputs
# (the validation's distance, which needs no truth). Measured (benchmarks/README.md,
# quality): on the blur task, sharpening went from 1.01-1.03 while it matched the input's
# PSNR to 1.06-1.25 as it fell 0.1-4.3 dB under it; shape stayed at or under 1.03 at the
# input's PSNR, colour and the demo at 0.14-0.67.
DRIFT = 1.05
VALIDATION_PATIENCE = 5  # consecutive validation passes


class Health:
    """Feed it logged losses and sample grids; it returns warnings to show."""

    def __init__(self, gan_loss: str, warmup: int = WARMUP) -> None:
        if gan_loss not in CHANCE:
            raise ValueError(f"unknown GAN loss {gan_loss!r}")
        self.gan_loss = gan_loss
        chance = CHANCE[gan_loss]
        self.d_floor = None if chance is None else D_COLLAPSE * chance
        self.warmup = warmup
        self._low: dict[str, deque[bool]] = {}
        self._active: set[str] = set()
        # Per direction: the lowest distance-to-domain ratio seen (translations against
        # the untranslated inputs).
        self._closest: dict[str, float] = {}

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
        if self.d_floor is None:
            return warnings
        other_loss = "" if self.gan_loss == "lsgan" else "--gan-loss lsgan, "
        for d, g, judged in (("D_A", "G_A", "B"), ("D_B", "G_B", "A")):
            if d not in losses:
                continue
            window = self._low.setdefault(d, deque(maxlen=D_PATIENCE))
            window.append(iteration >= self.warmup and losses[d] < self.d_floor)
            collapsed = len(window) == D_PATIENCE and all(window)
            warnings += self._once(
                d, collapsed,
                f"{d} has fallen to about 0 since iteration {iteration}: the discriminator for "
                f"domain {judged} wins outright and {g} learns little from it. Try a lower "
                f"discriminator learning rate (--lr-d), {other_loss}or a smaller "
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


    def validation(self, iteration: int, figures: dict[str, float]) -> list[str]:
        """Warnings from a validation pass's figures (core/validation.py)."""
        warnings: list[str] = []
        late = iteration >= self.warmup
        for side, g, target in (("A", "G_A", "B"), ("B", "G_B", "A")):
            if f"change_{side}" not in figures:
                continue
            idle = self._streak(f"idle_{side}", late and figures[f"change_{side}"] < IDLE)
            warnings += self._once(
                f"idle_{side}", idle,
                f"{g} has left its inputs almost unchanged for {VALIDATION_PATIENCE} "
                f"validations (iteration {iteration}): it is not translating to {target}. Try "
                "a smaller --lambda-identity, a higher --lr, or a discriminator that sees the "
                "difference (more --discriminator-option width, or norm=none)")
            if f"psnr_{side}" in figures:
                worse = self._streak(f"worse_{side}", late and figures[f"psnr_{side}"]
                                     < figures[f"psnr_{side}_input"])
                warnings += self._once(
                    f"worse_{side}", worse,
                    f"{g}'s translations have been further from the truth than the "
                    f"untranslated images for {VALIDATION_PATIENCE} validations "
                    f"({figures[f'psnr_{side}']:.1f} dB against {figures[f'psnr_{side}_input']:.1f}"
                    " dB untranslated): the model so far is worse than doing nothing. Train "
                    "longer, or try the recipe of another --preset")
            elif f"swd_{side}" in figures:  # no truth: the distance to the domain tells
                distance, before = figures[f"swd_{side}"], figures[f"swd_{side}_input"]
                ratio = distance / max(before, 1e-12)
                closest = self._closest[side] = min(ratio, self._closest.get(side, ratio))
                drift = self._streak(f"drift_{side}", late and ratio > DRIFT)
                if closest <= DRIFT:  # it was about as close as the inputs: drifting
                    advice = ("It was closer earlier in the run: compare the sample grids "
                              "and export an earlier checkpoint (the run's checkpoints folder "
                              "keeps one every --keep-every-epochs), or go on with a lower --lr")
                else:
                    advice = "Train longer, or try the recipe of another --preset"
                warnings += self._once(
                    f"drift_{side}", drift,
                    f"{g}'s translations have been further from domain {target} than the "
                    f"untranslated images for {VALIDATION_PATIENCE} validations (distance "
                    f"{distance:.3f} against {before:.3f} untranslated, iteration {iteration}): "
                    f"so far the model does worse than doing nothing. {advice}")
            inverted = self._streak(f"invert_{side}", figures.get(f"corr_{side}", 0) < INVERTED)
            warnings += self._once(
                f"invert_{side}", inverted,
                f"{g} inverts its inputs' brightness (correlation "
                f"{figures[f'corr_{side}']:.2f} at iteration {iteration}), a known CycleGAN "
                "failure. Resume from an earlier checkpoint with a higher --lambda-identity, "
                "or start again with another --seed")
        return warnings

    def _streak(self, key: str, condition: bool) -> bool:
        """True once ``condition`` has held for VALIDATION_PATIENCE passes in a row."""
        window = self._low.setdefault(key, deque(maxlen=VALIDATION_PATIENCE))
        window.append(condition)
        return len(window) == VALIDATION_PATIENCE and all(window)


def _spread(images: torch.Tensor) -> float:
    """Mean absolute difference between each image and the batch's mean image."""
    return float((images - images.mean(0, keepdim=True)).abs().mean())
