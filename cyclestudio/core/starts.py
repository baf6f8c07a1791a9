"""The starts a fresh run makes before its first step: colour, then sharpness.

Both read the same pass over the domains' training images (core/domain_sample.py); each
sets its own branch of the generators and applies only where the domains differ in what
it measures. The weight averages then begin as copies of the started generators.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cyclestudio.core import colour_start as colour
from cyclestudio.core import sharpness_start as sharpness
from cyclestudio.core.config import DataConfig
from cyclestudio.core.domain_sample import read_domain


@dataclass(frozen=True)
class Starts:
    colour: colour.ColourStart | None  # None: not asked for
    sharpness: sharpness.SharpnessStart | None
    seconds: float  # CPU time of both, reading the images included


def run_starts(model: Any, a: Sequence[Path], b: Sequence[Path], data: DataConfig,
               seed: int, *, colour_on: bool, sharpness_on: bool,
               multiple: int = 4) -> Starts:
    """The asked-for starts on a fresh CycleGAN ``model`` (reads the images once)."""
    started = time.process_time()
    want_colour = colour_on and colour.colour_branches(model) is not None
    want_sharpness = sharpness_on and sharpness.filter_branches(model) is not None
    result_colour = colour.NO_BRANCH if colour_on else None
    result_sharpness = sharpness.NO_BRANCH if sharpness_on else None
    if want_colour or want_sharpness:
        # The colour start's random numbers: reading draws first, the start goes on
        # drawing from the same generator.
        rng = random.Random(seed * 1_000_003 + 17)
        sample_a = read_domain(a, data, colour.FIT, rng, want_sharpness, multiple)
        sample_b = read_domain(b, data, colour.FIT, rng, want_sharpness, multiple)
        if want_colour:
            result_colour = colour.colour_start(model, sample_a, sample_b, rng)
        if want_sharpness:
            result_sharpness = sharpness.sharpness_start(model, sample_a, sample_b)
        if any(r is not None and r.applied for r in (result_colour, result_sharpness)):
            for key, average in model.ema.items():
                average.load_state_dict(model.nets[key].state_dict())
    return Starts(result_colour, result_sharpness, time.process_time() - started)
