"""The learning-rate schedule: its shape, and fitting its length to the iterations asked for.

Both are pure functions of numbers, so a resumed run computes exactly the rate an
uninterrupted one had, and the rules are tested without training anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from cyclestudio.core.config import OptimConfig


def lr_factor(policy: str, iteration: int, total: int, decay_start: int, step: int) -> float:
    """The learning-rate multiplier at ``iteration``."""
    if policy == "linear":
        if iteration < decay_start:
            return 1.0
        return max(0.0, 1.0 - (iteration - decay_start) / max(1, total - decay_start))
    if policy == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(iteration, total) / max(1, total)))
    if policy == "step":
        return 0.1 ** (iteration // max(1, step))
    raise ValueError(policy)


def epochs_for(iterations: int, per_epoch: int) -> int:
    """Whole epochs needed to cover ``iterations``."""
    return max(1, math.ceil(iterations / per_epoch))


@dataclass(frozen=True)
class Fitted:
    """A schedule fitted to a run, and what to tell the user about the change (or "")."""

    optim: OptimConfig
    warning: str = ""


def fit_schedule(
    optim: OptimConfig, per_epoch: int, iterations: int | None, *, resumed: bool,
    epochs_given: bool = False, decay_given: bool = False,
) -> Fitted:
    """Stretch the schedule so it reaches ``iterations``; never shorten it.

    A learning rate that reached 0 before the last iteration would waste the rest of
    the run. A new run keeps the decay's share of the schedule: half the epochs unless
    ``--decay-epochs`` was given, else the same fraction. A resumed run keeps its decay
    length so the iterations already done keep the rate they had.
    """
    if not iterations or optim.epochs * per_epoch >= iterations:
        return Fitted(optim)
    epochs = epochs_for(iterations, per_epoch)
    if resumed:
        return Fitted(replace(optim, epochs=epochs), (
            f"extending the schedule from {optim.epochs} to {epochs} epochs to reach "
            f"{iterations} iterations; the decay phase moves later"))
    if decay_given:
        decay = min(epochs, round(optim.decay_epochs * epochs / optim.epochs))
    else:
        decay = epochs // 2
    warning = ""
    if epochs_given:
        warning = (f"--epochs {optim.epochs} is {optim.epochs * per_epoch} iterations, fewer "
                   f"than --iterations {iterations}: the schedule spans {epochs} epochs "
                   f"instead, decaying over the last {decay}")
    return Fitted(replace(optim, epochs=epochs, decay_epochs=decay), warning)
