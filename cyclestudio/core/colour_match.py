"""A colour-distribution loss: how far the colours of a generator's translations are from
the colours of the real images of its target domain, over recent images.

The distance is the sliced Wasserstein distance between two clouds of pixel colours:
both clouds are projected on random directions of colour space, the projections are
sorted, and the sorted values are compared. That is the optimal transport between the
two one-dimensional distributions, so its gradient tells every translated pixel which
way its colour has to move, where a discriminator's gradient only says "more like the
other domain" through a network that is still learning. The differences are squared,
so the gradient fades as the two clouds match; their sampling noise does not, and on
long runs it keeps nudging colours that are already right (benchmarks/README.md,
quality: why the loss is not the default).

It compares domains, not single images: the translated cloud takes pixels from the last
``images`` steps (the older ones as fixed points; only the newest carry a gradient),
the real cloud from the last ``real_images`` steps, so a translation whose colours are
right for its own content is not pushed towards the domain's average picture. (A few
images are still a noisy sample of a domain, and matching noisy samples pulls
contrast in a little: the real cloud is long, where staleness costs nothing, and the
translated one short, because its older pixels are the generator's older guesses.)
The loss fades in while the real cloud fills. It cannot see where a colour is, only
how often it occurs, so it does not ask for shapes or sharpness.
"""

from __future__ import annotations

from collections import deque

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
        self.real: deque[Tensor] = deque(maxlen=real_images)
        self.fake: deque[Tensor] = deque(maxlen=images - 1)

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
        ours = torch.sort(clouds @ directions, dim=0).values
        theirs = torch.sort(reals @ directions, dim=0).values
        if theirs.shape[0] != ours.shape[0]:  # quantiles of the real cloud at ours' ranks
            theirs = _quantiles(theirs, ours.shape[0])
        # Scaled so that the newest image's pixels get the gradient a per-image loss gives,
        # and faded in while the real cloud fills: a few images are a noisy picture.
        filled = len(self.real) / self.real.maxlen
        loss = (ours - theirs).square().mean() * (clouds.shape[0] / new_fake.shape[0]) * filled
        self.fake.append(new_fake.detach())
        return loss

    def state(self) -> dict[str, list[Tensor]]:
        return {"real": [t.cpu() for t in self.real], "fake": [t.cpu() for t in self.fake]}

    def load(self, state: dict[str, list[Tensor]], device: torch.device) -> None:
        self.real.clear()
        self.fake.clear()
        self.real.extend(t.to(device) for t in state.get("real", []))
        self.fake.extend(t.to(device) for t in state.get("fake", []))


def _quantiles(sorted_values: Tensor, count: int) -> Tensor:
    """``count`` evenly spaced quantiles of each column of ``sorted_values``."""
    n = sorted_values.shape[0]
    position = (torch.arange(count, device=sorted_values.device) + 0.5) * (n / count) - 0.5
    position = position.clamp(0, n - 1)
    low = position.floor().long()
    high = (low + 1).clamp(max=n - 1)
    weight = (position - low).unsqueeze(1)
    return sorted_values[low] * (1 - weight) + sorted_values[high] * weight
