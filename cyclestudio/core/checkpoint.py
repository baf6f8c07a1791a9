"""Checkpoints: the whole training state, written atomically, read without unpickling code.

A checkpoint is a ``torch.save`` of plain containers (dicts, lists, numbers, strings,
tensors) and is always read with ``weights_only=True``.

Keys: ``format`` ("cyclestudio.checkpoint"), ``format_version``, ``cyclestudio_version``,
``config`` (config.json's content), ``iteration``, ``epoch`` (0-based epoch in progress),
``position`` (iterations done within that epoch), ``images`` (``{"A": n, "B": n}``
readable images at the time), ``nets`` (``G_A``, ``G_B``, ``D_A``,
``D_B`` state dicts; G_A maps A→B), ``optimizers`` (``G``, ``D``), ``schedulers``
(``G``, ``D``), ``scaler`` (or None), ``pools`` (``A``, ``B``: lists of image
tensors), ``colour`` (with ``lambda_colour``: ``A``, ``B``: the colour loss's recent
pixels, ``real`` and ``fake`` lists of tensors; else empty), ``rng`` (torch CPU and CUDA
states, the pool and colour-loss generators' states),
``world_size`` (processes that trained it; 1 when missing), ``schedule_world_size``
(the processes the schedule's iterations are counted for: the run's first world size),
with ``--ema`` ``ema`` (``G_A``, ``G_B``: the generators' weight average, what exports
take) and ``ema_steps``, and with several processes ``rank_states`` (index r: process
r's ``pools``, ``colour`` and ``rng``; None for rank 0, whose are the keys above).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cyclestudio import __version__
from cyclestudio.atomic import atomic_write
from cyclestudio.errors import UserError

FORMAT = "cyclestudio.checkpoint"
FORMAT_VERSION = 1
LATEST = "latest.pt"


def checkpoint_dir(run: Path) -> Path:
    """Where a run keeps its checkpoints."""
    return Path(run) / "checkpoints"


def latest_checkpoint(run: Path) -> Path:
    """The run's newest checkpoint, or a UserError saying the folder is not a run."""
    run = Path(run)
    path = checkpoint_dir(run) / LATEST
    if path.is_file():
        return path
    if not (run / "config.json").is_file():
        raise UserError(
            f"{run} is not a cyclestudio run folder",
            "give the folder that `cyclestudio train --out` created (it holds config.json)",
        )
    raise UserError(
        f"{run} has no checkpoint yet",
        "the run stopped before its first checkpoint; start it again",
    )


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write to a temp file in the same folder, fsync, then rename over ``path``.

    A crash or kill at any moment leaves either the old checkpoint or the new one,
    never a half-written file; a full disk is a UserError saying where and how much.
    """
    state = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "cyclestudio_version": __version__,
        **state,
    }
    with atomic_write(Path(path), needed=tensor_bytes(state)) as f:
        torch.save(state, f)


def tensor_bytes(value: Any) -> int:
    """Roughly what ``torch.save`` of ``value`` takes on disk: its tensors' bytes."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v) for v in value)
    return 0


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely; a damaged or foreign file is a UserError."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path} does not exist", "check the path") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        raise UserError(
            f"{path} is not a readable cyclestudio checkpoint ({type(exc).__name__})",
            "the file is damaged or was written by another program",
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(
            f"{path} is not a cyclestudio checkpoint", "give a run folder or a model file"
        )
    if state.get("format_version", 0) > FORMAT_VERSION:
        raise UserError(
            f"{path} was written by a newer cyclestudio ({state.get('cyclestudio_version')})",
            "update cyclestudio",
        )
    return state
