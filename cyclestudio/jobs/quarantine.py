"""Quarantine: a watched file that cannot be translated is moved aside, never deleted.

It goes to ``OUT/failed/`` (its subfolder mirrored), with ``NAME.txt`` beside it
saying where it came from, when, and why it failed. Out of the watched folder, it is
not tried again on every restart; put it back (changed, or as it is) to try again.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from pathlib import Path

FOLDER = "failed"


def quarantine(source: Path, root: Path, out_dir: Path, reason: str) -> Path | None:
    """Move ``source`` (inside ``root``) to ``out_dir/failed/…`` with a note; its new path,
    or None if it could not be moved (it stays where it is)."""
    try:
        relative = Path(os.path.abspath(source)).relative_to(os.path.abspath(root))
    except ValueError:
        relative = Path(source.name)
    target = _free_name(Path(out_dir) / FOLDER / relative)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _move(source, target)
    except OSError:
        return None
    note = (f"{source}\nfailed: {reason}\nmoved here: "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n"
            "Put it back into the watched folder to try again.\n")
    try:
        from cyclestudio.atomic import atomic_write

        with atomic_write(target.with_name(target.name + ".txt"), "w", encoding="utf-8") as f:
            f.write(note)
    except Exception:  # noqa: BLE001 - the file is safe; only its note is missing
        pass
    return target


def _free_name(path: Path) -> Path:
    """``path``, or ``name (2).ext``… if that is taken (an earlier failure of the same name)."""
    candidate, n = path, 1
    while os.path.lexists(candidate) or os.path.lexists(str(candidate) + ".txt"):
        n += 1
        candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
    return candidate


def _move(source: Path, target: Path) -> None:
    """Rename; across file systems copy (fsynced) and only then remove the original."""
    try:
        os.rename(source, target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    if os.path.islink(source):
        os.symlink(os.readlink(source), target)
    else:
        shutil.copy2(source, target)
        with open(target, "rb") as f:
            os.fsync(f.fileno())
    os.unlink(source)
