"""The colour start: generators that begin at the colour change the two domains show.

A generator that starts as the identity has to find a colour change through the
discriminator's and the colour loss's noisy gradients, one image at a time; on the
benchmark's colour grade that settled near 31–32 / 29 dB (A→B / B→A) however long it
trained. Yet the colours of the two domains' images say most of it, and can be read
before the first step:

1. Pixel colours are drawn from each domain's training images (at most 256 images a
   domain, the pixels spread over them).
2. The least-moving map from A's colours to B's is the optimal transport between the two
   samples (squared distance; exact, scipy's linear_sum_assignment): each A colour is
   paired with the B colour it goes to, and so each B colour with the A colour it comes
   from. Eight transports of 1,000 colours a side, pooled: each is exact and they are
   far cheaper than one of 8,000.
3. The pairs are noisy (a sample), so each direction is smoothed into a quadratic
   function of the colour (least squares: 10 terms a channel for RGB), which also
   reaches colours the sample missed. Smoothing is what makes it good: the pairs
   themselves, carried to new colours by their nearest neighbours, score 2–4 dB lower
   (benchmarks/colour_oracle.py).
4. Each generator's colour branch (``colour_branch``, the per-pixel MLP of `fast`'s
   ResNet) is fitted to that function minus the identity, so the generator starts at it;
   the spatial part still starts at zero, and training goes on from there as before.

It only applies where the domains' colours differ. Like is compared with like: the
transport's cost (the mean squared move of a colour, in the models' [-1, 1] range)
between half of one domain's images and half of the other's, against the same cost
between the two halves of one domain, which is what sampling and content alone give.
Below twice that, the domains' colours are the same for all the sample can tell (a
sharpness or shape change, measured at 0.9–1.3 times), the generators start as the
identity, and nothing else about the run changes (its own random numbers, and no
weight touched). Measured in benchmarks/README.md ("The colour start").
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from cyclestudio.core.domain_sample import DomainSample

PAIRS = 1000  # pixels a domain in one transport (exact: about 0.4 s of one core)
BATCHES = 8  # transports pooled
FIT = 8000  # pixels a domain the colour branch is fitted on
FIT_STEPS = 400
MARGIN = 2.0  # the domains' colours differ when the cost is this many times the floor


@dataclass(frozen=True)
class ColourStart:
    """What the colour start did (the ``colour_start`` field of the started event)."""

    applied: bool
    distance: float  # mean squared colour move between halves of the two domains
    floor: float  # the same between the two halves of one domain (A's and B's mean)
    fit_error: float  # rms difference between the branches and the functions they fit
    seconds: float  # CPU time it took (process time), reading the images aside
    note: str  # what it means, in words
    no_branch: bool = False  # skipped because the generator has no colour branch

    def to_json(self) -> dict[str, Any]:
        return {"applied": self.applied, "distance": round(self.distance, 5),
                "floor": round(self.floor, 5), "fit_error": round(self.fit_error, 5),
                "seconds": round(self.seconds, 2), "note": self.note}


def _take(parts: list[np.ndarray], count: int, rng: random.Random) -> np.ndarray:
    """``count`` of the colours (all of them if there are fewer), in their order."""
    pixels = np.concatenate(parts)
    if len(pixels) <= count:
        return pixels
    return pixels[sorted(rng.sample(range(len(pixels)), count))]


def _halves(parts: list[np.ndarray], count: int, rng: random.Random
            ) -> tuple[np.ndarray, np.ndarray]:
    """Two samples of ``count`` colours (or fewer, both the same size) of one domain from
    different images (different pixels of one image when there is only one)."""
    if len(parts) == 1:
        pixels = parts[0][rng.sample(range(len(parts[0])), len(parts[0]))]
        first, second = pixels[: len(pixels) // 2], pixels[len(pixels) // 2:]
    else:
        middle = len(parts) // 2
        first, second = _take(parts[:middle], count, rng), _take(parts[middle:], count, rng)
    return _same_size(first[:count], second[:count])


def _same_size(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    size = min(len(first), len(second))
    return first[:size], second[:size]


def transport(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The least-moving pairing of two equal-sized colour samples (optimal transport,
    squared distance): for each ``src`` colour the ``dst`` colour it goes to, for each
    ``dst`` colour the ``src`` colour it comes from, and the mean squared move."""
    from scipy.optimize import linear_sum_assignment

    cost = (src ** 2).sum(1)[:, None] + (dst ** 2).sum(1)[None, :] - 2 * src @ dst.T
    rows, cols = linear_sum_assignment(cost)
    forward, backward = np.empty_like(src), np.empty_like(dst)
    forward[rows] = dst[cols]
    backward[cols] = src[rows]
    return forward, backward, float(cost[rows, cols].mean())


def quadratic_terms(x: np.ndarray) -> np.ndarray:
    """1, each channel, and each product of two channels: (pixels, terms)."""
    columns = [np.ones(len(x))] + [x[:, c] for c in range(x.shape[1])]
    columns += [x[:, i] * x[:, j]
                for i, j in itertools.combinations_with_replacement(range(x.shape[1]), 2)]
    return np.stack(columns, 1)


def fit_quadratic(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares coefficients of the quadratic function taking ``src`` to ``dst``."""
    coefficients, *_ = np.linalg.lstsq(quadratic_terms(src), dst, rcond=None)
    return coefficients


def fit_branch(branch: nn.Module, inputs: np.ndarray, change: np.ndarray,
               steps: int = FIT_STEPS) -> float:
    """Train a per-pixel branch to output ``change`` for ``inputs`` (both (pixels, C)),
    full batch; the rms error it ends at."""
    param = next(branch.parameters())
    as_image = {"device": param.device, "dtype": param.dtype}
    x = torch.as_tensor(inputs.T[None, :, :, None].copy(), **as_image)  # (1, C, P, 1)
    y = torch.as_tensor(change.T[None, :, :, None].copy(), **as_image)
    optimiser = torch.optim.Adam(branch.parameters(), lr=3e-3)
    with torch.enable_grad():
        for _ in range(steps):
            optimiser.zero_grad(set_to_none=True)
            loss = ((branch(x) - y) ** 2).mean()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        return float(((branch(x) - y) ** 2).mean().sqrt())


def colour_branches(model: Any) -> list[nn.Module] | None:
    """G_A's and G_B's colour branches, or None when the generator has none."""
    branches = [getattr(model.nets[key], "colour_branch", None) for key in ("G_A", "G_B")]
    return branches if all(isinstance(b, nn.Module) for b in branches) else None


NO_BRANCH = ColourStart(False, 0.0, 0.0, 0.0, 0.0,
                        "the generator has no colour branch (the resnet generators' "
                        "pixel_branch, with residual), so it starts as it is",
                        no_branch=True)


def colour_start(model: Any, sample_a: DomainSample, sample_b: DomainSample,
                 rng: random.Random) -> ColourStart:
    """Fit the generators' colour branches to the domains' colour change, where there is
    one (module docstring). ``model`` is a CycleGAN; the caller copies the generators
    into their weight averages (core/starts.py). ``rng`` is the one the samples were
    drawn with."""
    started = time.process_time()
    branches = colour_branches(model)
    if branches is None:
        return NO_BRANCH
    parts_a, parts_b = sample_a.colours, sample_b.colours
    # Like with like: each half of one domain against the other half of the same domain,
    # and against a half of the other domain, all from different images.
    a1, a2 = _halves(parts_a, PAIRS // 2, rng)
    b1, b2 = _halves(parts_b, PAIRS // 2, rng)
    floor = (transport(a1, a2)[2] + transport(b1, b2)[2]) / 2
    distance = (transport(*_same_size(a1, b2))[2] + transport(*_same_size(a2, b1))[2]) / 2
    if distance <= MARGIN * floor:
        return ColourStart(False, distance, floor, 0.0, time.process_time() - started,
                           "the domains' colours differ no more than two halves of one "
                           "domain do, so the generators start as the identity")
    # Several smaller transports, pooled: as exact per pair, far cheaper than one of
    # their total size, and their noise averages out in the fit.
    batches = []
    for _ in range(BATCHES):
        pairs_a, pairs_b = _take(parts_a, PAIRS, rng), _take(parts_b, PAIRS, rng)
        count = min(len(pairs_a), len(pairs_b))
        batches.append((pairs_a[:count], pairs_b[:count],
                        *transport(pairs_a[:count], pairs_b[:count])[:2]))
    pairs_a, pairs_b, to_b, to_a = (np.concatenate(x) for x in zip(*batches, strict=True))
    errors = []
    for branch, coefficients, parts in (
            (branches[0], fit_quadratic(pairs_a, to_b), parts_a),
            (branches[1], fit_quadratic(pairs_b, to_a), parts_b)):
        inputs = _take(parts, FIT, rng)
        target = np.clip(quadratic_terms(inputs) @ coefficients, -1.0, 1.0)
        errors.append(fit_branch(branch, inputs, target - inputs))
    return ColourStart(True, distance, floor, max(errors), time.process_time() - started,
                       "the generators start at the colour change the domains show")
