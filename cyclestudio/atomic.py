"""Writing files so that a crash, a kill or a full disk never leaves half a file behind.

Every file cyclestudio writes (outputs, model files, checkpoints, config.json, sample
grids) goes through :func:`atomic_write`: a hidden temp file beside the target, named
``.NAME.cs<pid>-<random>.tmp``, fsynced and renamed into place. The temp file gets the
permissions a plain ``open(path, "w")`` would give (the umask, or the mode of the file
it replaces), a full disk is a :class:`~cyclestudio.errors.UserError` that says so, and
the pid in the name lets :func:`remove_stale_temps` clear what a killed process left
without touching a live process's work.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from cyclestudio.errors import UserError

# .NAME.cs<pid>-<random>.tmp; the older .NAME.<random>.tmp (no pid) is matched apart.
_OURS = re.compile(r"^\.(?P<name>.+)\.cs(?P<pid>\d+)-[0-9a-z]+\.tmp$")
_OLD = re.compile(r"^\.(?P<name>.+)\.[0-9a-z_]{8}\.tmp$")
_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def _umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere read it the only way there is, once, at import
    os.umask(mask)
    return mask


_UMASK = _umask()


def new_file_mode(path: Path) -> int:
    """The mode a plain write to ``path`` would leave: the old file's, else 0666 & ~umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_UMASK


def temp_name(path: Path) -> Path:
    """A fresh hidden temp path beside ``path`` that names this process."""
    return path.with_name(f".{path.name}.cs{os.getpid()}-{secrets.token_hex(4)}.tmp")


@contextmanager
def atomic_write(
    path: Path, mode: str = "wb", encoding: str | None = None, *, exclusive: bool = False,
    needed: int | None = None,
) -> Iterator[IO[Any]]:
    """Yield a hidden temp file beside ``path``; on success fsync it and move it to ``path``.

    Readers see the old file or the new one, never a mix. On any error the temp file
    is removed and ``path`` is untouched; a full disk raises a UserError naming the
    folder, the space needed (``needed`` bytes, when the caller knows) and the space free.
    ``exclusive``: never replace an existing ``path`` (raise FileExistsError instead),
    so that of two processes writing one name exactly one wins.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                 0o600)
    try:
        # mkstemp-style 0600 would stay on the published file: give it a normal file's mode.
        if hasattr(os, "fchmod"):
            os.fchmod(fd, new_file_mode(path))
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            publish_exclusive(tmp, path)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, Exception) and is_disk_full(exc):
            raise disk_full(path, needed) from None
        raise


def publish_exclusive(tmp: Path, path: Path) -> None:
    """Move ``tmp`` to ``path`` unless ``path`` exists (FileExistsError); one atomic step.

    A hard link fails when the name is taken, whoever took it; where a file system has
    no hard links, an exclusive create claims the name first.
    """
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (FAT, some network shares)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def is_disk_full(exc: BaseException) -> bool:
    """True if ``exc`` (or what it was raised from, as torch.save does) is a full disk."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def disk_full_error(exc: BaseException) -> UserError | None:
    """The UserError for ``exc`` if a full disk caused it (naming the file), else None."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, UserError) and cause.message.startswith("the disk is full"):
            return cause
        if isinstance(cause, OSError) and cause.errno in _DISK_FULL:
            name = cause.filename
            return disk_full(Path(os.fsdecode(name)) if name else Path.cwd() / "?")
        cause = cause.__cause__ or cause.__context__
    return None


def disk_full(path: Path, needed: int | None = None) -> UserError:
    """The UserError for a write to ``path`` that found its disk full."""
    try:
        free = shutil.disk_usage(path.parent).free
        free_text = f", {_size(free)} free"
    except OSError:
        free_text = ""
    need = f"about {_size(needed)} needed" if needed else "the space needed is unknown"
    return UserError(
        f"the disk is full: cannot write {path} ({need}{free_text} in {path.parent})",
        "free some space on that disk (or choose a folder on another one) and try again; "
        "the previous file, if there was one, is unchanged")


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} bytes"


def remove_stale_temps(folder: Path, recursive: bool = False, owned: bool = False,
                       min_age_s: float = 600.0) -> int:
    """Remove temp files of ours whose process is gone; return how many.

    ``owned``: the caller holds the folder (a locked run folder), so every temp file of
    our naming is stale, older pid-less names included. Otherwise a temp file is stale
    when no process here has its pid and it has not changed for ``min_age_s`` (on a
    shared network folder the pid may be another machine's, whose writer renames its
    file within moments of the last byte).
    """
    removed = 0
    now = time.time()
    walker = os.walk(folder) if recursive else [(str(folder), [], _names(folder))]
    for root, dirs, files in walker:
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") or not name.endswith(".tmp"):
                continue
            match = _OURS.match(name)
            if match:
                pid = int(match["pid"])
                stale = owned or (pid != os.getpid() and not pid_alive(pid)
                                  and _age(os.path.join(root, name), now) >= min_age_s)
            else:
                stale = owned and _OLD.match(name) is not None
            if stale:
                try:
                    os.unlink(os.path.join(root, name))
                    removed += 1
                except OSError:
                    pass
    return removed


def _age(path: str, now: float) -> float:
    try:
        return now - os.stat(path).st_mtime
    except OSError:
        return 0.0


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def pid_alive(pid: int) -> bool:
    """True if a process with this id exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else (or we cannot tell: assume alive)
    return True


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
