"""What the processes of a distributed run tell the launcher that started them.

`cyclestudio train --gpus N` makes a private folder and names it in each process's
environment (``CYCLESTUDIO_RANK_NOTES``). A process writes there why it failed
(``rank<R>.json``: message and hint) and its process id (``rank<R>.pid``), and rank 0
writes ``terminal.json`` once it has reported how the run ended (so the launcher does
not report it twice). Under plain torchrun there is no such folder and nothing is
written. The folder is never the run folder: only rank 0 writes there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ENV = "CYCLESTUDIO_RANK_NOTES"
# Set by the launcher: rank 0 reads control lines from stdin even without --events
# (the launcher writes `stop` there on Ctrl-C).
CONTROL_ENV = "CYCLESTUDIO_CONTROL_STDIN"
TERMINAL = "terminal.json"


def folder() -> Path | None:
    """The launcher's notes folder, or None when no launcher of ours is listening."""
    path = os.environ.get(ENV)
    return Path(path) if path else None


def write(name: str, data: Any) -> None:
    """Leave one note (never raises: a note is a courtesy, not part of the run)."""
    where = folder()
    if where is None:
        return
    try:
        tmp = where / f".{name}.tmp"
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, where / name)
    except OSError:
        pass


def failure(rank: int, message: str, hint: str) -> None:
    """Note why process ``rank`` is ending badly."""
    write(f"rank{rank}.json", {"message": message, "hint": hint})


def read(where: Path, name: str) -> Any:
    """One note's content, or None if it was not left."""
    try:
        return json.loads((where / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def pids(where: Path) -> dict[int, int]:
    """The process id of each rank that has started, by rank."""
    found: dict[int, int] = {}
    for path in where.glob("rank*.pid"):
        try:
            found[int(path.stem[4:])] = int(path.read_text(encoding="ascii"))
        except (OSError, ValueError):
            continue
    return found
