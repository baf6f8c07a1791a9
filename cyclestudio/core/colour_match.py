"""A colour-distribution loss: how far the colours of a generator's translations are from
the colours of the real images of its target domain, over recent images.

The distance is the sliced Wasserstein distance between two clouds of pixel colours:
both clouds are projected on random directions of colour space, the projections are
sorted, and the sorted values are compared. That is the optimal transport between the
two one-dimensional distributions, so its gradient tells every translated pixel which
way its colour has to move, where a discriminator's gradient only says "more like the
other domain" through a network that is still learning.

A few images are a noisy sample of a domain, so even a perfect translation scores above
zero, and pushing on that noise nudges colours that are already right: on the demo's
long run an ungated loss slid back by 2 dB after iteration ~1,500 (benchmarks/README.md,
quality). So the loss is gated by its noise floor, measured like with like: the gate's
level is the distance between the translations and the real images of the same last
``images`` steps, its floor the same distance between those real images and the
``images`` steps' worth before them, which is what two samples of one domain differ by.
The running mean of the level over the running floor (about the last 100 steps, from the
17th on: the floor reads high until a few hundred steps have passed) gives the gate,
``ratio - 1`` clipped to 0..1: full while the translations are clearly off, fading to
nothing as they come within sampling noise of the domain, back as soon as they drift away.

It compares domains, not single images: the translated cloud takes pixels from the last
``images`` steps (the older ones as fixed points; only the newest carry a gradient),
the real cloud from the last ``real_images`` steps, so a translation whose colours are
right for its own content is not pushed towards the domain's average picture. (Matching
noisy samples pulls contrast in a little; the gate takes most of that away. The real
cloud is long, where staleness costs nothing, and the translated one short, because its
older pixels are the generator's older guesses. A long cloud has wider tails than a few
images, which may push the translations' tails out while the gate is open; targets from
as few real images as the translated cloud holds were measured too, and lost on the
demo: benchmarks/README.md.) The loss fades in while the real cloud fills. It cannot see
where a colour is, only how often it occurs, so it does not ask for shapes or sharpness.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch
from torch import Tensor


class ColourMatch:
    """The sliced Wasserstein distance between translated and real colours, one
    direction (one generator's output against its target domain)."""

    def __init__(self, generator: torch.Generator, images: int = 8, pixels: int = 512,
                 projections: int = 8, real_images: int = 64, real_pixels: int = 128) -> None:
        self.generator = generator
        self.pixels, self.real_pixels = pixels, real_pixels
        self.projections = projections
        self.images = images
        self.real: deque[Tensor] = deque(maxlen=real_images)
        self.fake: deque[Tensor] = deque(maxlen=images - 1)
        # Running means of the distance and of its noise floor (about the last 100 steps).
        self.level: float | None = None
        self.floor: float | None = None
        self.gate = 1.0

    def _sample(self, images: Tensor, pixels: int) -> Tensor:
        """Up to ``pixels`` pixel colours of each image, as rows (N·pixels, C)."""
        n, c = images.shape[:2]
        flat = images.reshape(n, c, -1)
        count = flat.shape[2]
        if count > pixels:
            index = torch.randint(0, count, (pixels,), generator=self.generator)
            flat = flat[:, :, index.to(images.device)]
        return flat.transpose(1, 2).reshape(-1, c)

    def loss(self, fake: Tensor, real: Tensor) -> Tensor:
        """The distance for this step's translations ``fake`` (with their gradient) and
        real images ``real`` of the target domain, both (N, C, H, W) in [-1, 1]."""
        with torch.autocast(fake.device.type, enabled=False):  # sort full-precision values
            return self._loss(fake.float(), real.detach().float())

    def _loss(self, fake: Tensor, real: Tensor) -> Tensor:
        new_fake = self._sample(fake, self.pixels)
        self.real.append(self._sample(real, self.real_pixels))
        clouds = torch.cat([new_fake, *self.fake], 0)
        reals = torch.cat(list(self.real), 0)
        channels = clouds.shape[1]
        directions = torch.randn(channels, self.projections, generator=self.generator)
        directions = (directions / directions.norm(dim=0, keepdim=True)).to(clouds.device)
        theirs = torch.sort(reals @ directions, dim=0).values
        ours = torch.sort(clouds @ directions, dim=0).values
        distance = _distance(ours, theirs)
        self._update_gate(float(_distance(ours.detach(), self._recent(directions))),
                          self._floor(directions))
        # Scaled so that the newest image's pixels get the gradient a per-image loss gives,
        # and faded in while the real cloud fills: a few images are a noisy picture.
        filled = len(self.real) / self.real.maxlen
        loss = distance * (clouds.shape[0] / new_fake.shape[0]) * filled * self.gate
        self.fake.append(new_fake.detach())
        return loss

    def _floor(self, directions: Tensor) -> float | None:
        """The same distance between the newest ``images`` real images and the older ones
        (what a perfect translation would still score), once there are enough of both."""
        if len(self.real) <= 2 * self.images:
            return None
        older = list(self.real)[-2 * self.images:-self.images]
        older = torch.sort(torch.cat(older, 0) @ directions, dim=0).values
        return float(_distance(self._recent(directions), older))

    def _recent(self, directions: Tensor) -> Tensor:
        """The sorted projections of the newest ``images`` real images' pixels."""
        recent = torch.cat(list(self.real)[-self.images:], 0)
        return torch.sort(recent @ directions, dim=0).values

    def _update_gate(self, distance: float, floor: float | None) -> None:
        if floor is None:  # too few real images yet to tell noise from a real difference
            return
        keep = 0.99
        self.level = distance if self.level is None else keep * self.level + (1 - keep) * distance
        self.floor = floor if self.floor is None else keep * self.floor + (1 - keep) * floor
        self.gate = min(1.0, max(0.0, self.level / max(self.floor, 1e-12) - 1.0))

    def state(self) -> dict[str, Any]:
        return {"real": [t.cpu() for t in self.real], "fake": [t.cpu() for t in self.fake],
                "level": self.level, "floor": self.floor, "gate": self.gate}

    def load(self, state: dict[str, Any], device: torch.device) -> None:
        self.level, self.floor = state.get("level"), state.get("floor")
        self.gate = state.get("gate", 1.0)
        self.real.clear()
        self.fake.clear()
        self.real.extend(t.to(device) for t in state.get("real", []))
        self.fake.extend(t.to(device) for t in state.get("fake", []))


def _distance(ours: Tensor, theirs: Tensor) -> Tensor:
    """Mean squared difference of two sorted projections, ``theirs`` taken at ``ours``'
    ranks where their lengths differ."""
    if theirs.shape[0] != ours.shape[0]:
        theirs = _quantiles(theirs, ours.shape[0])
    return (ours - theirs).square().mean()


def _quantiles(sorted_values: Tensor, count: int) -> Tensor:
    """``count`` evenly spaced quantiles of each column of ``sorted_values``."""
    n = sorted_values.shape[0]
    position = (torch.arange(count, device=sorted_values.device) + 0.5) * (n / count) - 0.5
    position = position.clamp(0, n - 1)
    low = position.floor().long()
    high = (low + 1).clamp(max=n - 1)
    weight = (position - low).unsqueeze(1)
    return sorted_values[low] * (1 - weight) + sorted_values[high] * weight
