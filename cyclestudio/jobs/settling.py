"""When a file that arrived in a watched folder may be read: never half-written.

A copy, a download or a camera upload writes a file over seconds, sometimes in
chunks with pauses between them. Three signals say when it is complete:

* a close-after-write notification (Linux inotify's ``IN_CLOSE_WRITE``), or a rename
  into the folder (the usual way to publish a finished file): read it at once;
* otherwise (polling, macOS, Windows, files already there when the watch starts), a
  quiet period: the size and modification time unchanged for ``settle`` seconds, or
  for twice the longest pause seen between two of its changes, whichever is longer,
  so a writer that pauses for 2 s between chunks is waited out;
* a file that cannot be decoded may still be growing: it is read again only after it
  has stayed unchanged for another quiet period, and reported as failed only when
  it fails twice with nothing changed in between.

Network folders (NFS, SMB, …) raise no notifications for other machines' writes, so
they are polled, with a longer default quiet period.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

QUICK_S = 0.25  # after a close-after-write (or a rename in), to let a burst of events pass
DEFAULT_SETTLE_S = 2.0
NETWORK_SETTLE_S = 5.0
# A writer that keeps the file open (no close yet) is waited for at most this long
# (a multiple of the quiet period) before the quiet rule alone decides.
OPEN_WAIT_FACTOR = 15
NETWORK_FILE_SYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "afs", "ceph", "glusterfs", "9p", "davfs",
    "ncpfs", "lustre", "gpfs", "fuse.sshfs", "fuse.rclone", "fuse.s3fs", "fuse.gcsfuse",
})

# What a watcher saw happen to a path.
FOUND, CREATED, MODIFIED, CLOSED, MOVED_IN = "found", "created", "modified", "closed", "moved"


@dataclass
class _File:
    size: int = -1
    mtime_ns: int = -1
    changed: float = 0.0  # when its size or time last changed (or it was first seen)
    writing: bool = False  # a write was notified and no close-after-write since
    complete: bool = False  # closed after writing, or renamed in, since the last write
    gap: float = 0.0  # the longest pause seen between two of its changes
    failures: int = 0  # failed reads with nothing changed in between
    hold_until: float = 0.0  # not before this (a failed read waits a quiet period)
    in_hand: bool = False  # handed out by due(), not yet finished or failed


class Settler:
    """Files waiting to be complete, and which of them may be read now.

    :meth:`due` hands out the files that may be read; each comes back through
    :meth:`finished` (read, whatever the outcome) or :meth:`failed_read` (it could not
    be decoded: wait and try again, or report it).
    """

    def __init__(self, settle: float = DEFAULT_SETTLE_S, closes_notified: bool = False) -> None:
        self.settle = settle
        self.closes_notified = closes_notified
        self._files: dict[Path, _File] = {}

    def waiting(self) -> int:
        """Files seen and not yet read (those being read now excluded)."""
        return sum(not f.in_hand for f in self._files.values())

    def __contains__(self, path: object) -> bool:
        return path in self._files

    def note(self, path: Path, what: str, now: float | None = None) -> None:
        """Something happened to ``path``: FOUND, CREATED, MODIFIED, CLOSED or MOVED_IN."""
        now = time.monotonic() if now is None else now
        f = self._files.get(path)
        if f is None:
            f = self._files[path] = _File(changed=now)
        if what in (CREATED, MODIFIED):
            f.writing, f.complete = True, False
        elif what in (CLOSED, MOVED_IN):
            f.writing, f.complete = False, True

    def quiet_needed(self, path: Path) -> float:
        """How long ``path`` must stay unchanged before it is read."""
        f = self._files[path]
        patient = max(self.settle, 2 * f.gap)
        if f.complete and not f.failures:
            return QUICK_S
        if f.writing and self.closes_notified:
            return OPEN_WAIT_FACTOR * patient  # its writer will say when it closes it
        return patient

    def due(self, now: float | None = None) -> list[Path]:
        """The files that may be read now, oldest change first (handed out once)."""
        now = time.monotonic() if now is None else now
        ready: list[tuple[float, Path]] = []
        for path, f in list(self._files.items()):
            if f.in_hand:
                continue
            try:
                st = os.stat(path)
            except OSError:
                if os.path.lexists(path):  # a link that loops or points nowhere: say so
                    if now >= f.hold_until:
                        f.in_hand = True
                        ready.append((f.changed, path))
                else:
                    del self._files[path]  # gone again (a temp file renamed away)
                continue
            key = (st.st_size, st.st_mtime_ns)
            if key != (f.size, f.mtime_ns):
                if f.size >= 0:
                    f.gap = max(f.gap, now - f.changed)
                    f.failures = 0
                f.size, f.mtime_ns = key
                f.changed = now
                continue
            if now - f.changed >= self.quiet_needed(path) and now >= f.hold_until:
                f.in_hand = True
                ready.append((f.changed, path))
        return [path for _, path in sorted(ready)]

    def finished(self, path: Path) -> None:
        """``path`` was read; it waits again only if it has changed since it was judged
        complete (its writer was not done after all)."""
        f = self._files.get(path)
        if f is None:
            return
        try:
            st = os.stat(path)
            changed = (st.st_size, st.st_mtime_ns) != (f.size, f.mtime_ns)
        except OSError:
            changed = False
        if changed:
            f.in_hand = False
        else:
            del self._files[path]

    def failed_read(self, path: Path, now: float | None = None) -> bool:
        """``path`` could not be decoded. True: it may still be growing, so it waits
        another quiet period and is read again. False: it failed twice with nothing
        changed in between, so it is really broken (report it)."""
        now = time.monotonic() if now is None else now
        f = self._files.get(path)
        if f is None:
            return False
        f.in_hand = False
        f.failures += 1
        if f.failures >= 2:
            del self._files[path]
            return False
        f.complete = f.writing = False
        f.hold_until = now + max(self.settle, 2 * f.gap)
        return True


def file_system_type(path: Path) -> str | None:
    """The file system type of the mount holding ``path`` (Linux), else None."""
    if not sys.platform.startswith("linux"):
        return None
    target = os.path.realpath(path)
    best, kind = "", None
    try:
        with open("/proc/mounts", encoding="utf-8", errors="replace") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) < 3:
                    continue
                point = parts[1].replace("\\040", " ")
                inside = target == point or target.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, kind = point, parts[2]
    except OSError:
        return None
    return kind


def is_network_folder(path: Path) -> str | None:
    """The network file system ``path`` is on (nfs, cifs, …), or None if it is local."""
    kind = file_system_type(path)
    return kind if kind in NETWORK_FILE_SYSTEMS else None
