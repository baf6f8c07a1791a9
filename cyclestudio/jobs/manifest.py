"""The output folder's manifest: which input became which output, with which model.

``OUT/.cyclestudio-manifest.jsonl`` gets one JSON line per input dealt with::

    {"input": "/abs/in/a.png", "size": 1234, "mtime_ns": 1700000000000000000,
     "digest": "blake2b-128 hex of the content", "status": "translated" | "failed",
     "output": "sub/a_zebra.png" (relative to OUT) | null, "out_size": 5678,
     "out_mtime_ns": ..., "model": "model key", "settings": "a2b|png|95",
     "reason": "why it failed" | null, "time": 1700000000.0}

The latest line for an input wins. With it, ``translate`` and ``watch`` translate each
input once per content, model and settings, across restarts: an unchanged input is
skipped, a changed one (or a new model or direction) is translated again and replaces
the output it made before, and an output someone else wrote (or edited since) is never
replaced without ``--overwrite``. Without the file (deleted, or a folder from an older
version) the rule is what it always was: an existing output is skipped.

Only an index (input path → line offset) is held in memory, so a manifest of a
million inputs costs tens of megabytes, not gigabytes. Several processes may append
at once (each line is one ``O_APPEND`` write); the file is compacted when it is opened
by the only process using it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

NAME = ".cyclestudio-manifest.jsonl"
_CHUNK = 1 << 20

# What plan() makes of an input, given the manifest.
NEW = "new"  # never translated here: translate, never replacing an existing file
DONE = "done"  # translated before from this content with this model and settings
STALE = "stale"  # our own output from other content, model or settings: replace it
FOREIGN = "foreign"  # the output exists and is not (or no longer) ours: leave it alone
GONE = "gone"  # done before, but the output has been moved or deleted since
FAILED = "failed"  # failed before with this content, model and settings


@dataclass(frozen=True)
class Fingerprint:
    """What an input was when it was read: size, modification time and content digest."""

    size: int
    mtime_ns: int
    digest: str


def digest_bytes(data: bytes) -> str:
    """The content digest the manifest records (BLAKE2b, 128 bits)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def digest_file(path: Path) -> str:
    """:func:`digest_bytes` of a file's content, read in pieces."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def read_fingerprinted(path: Path) -> tuple[bytes, Fingerprint]:
    """A file's bytes and fingerprint, from one read (so the digest is of what is decoded)."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        data = f.read()
    return data, Fingerprint(len(data), st.st_mtime_ns, digest_bytes(data))


def model_key(model: Path) -> str:
    """A short name for a model's content: the digest of its file (a run folder's latest
    checkpoint), so a retrained or replaced model translates everything again."""
    model = Path(model)
    if model.is_dir():
        model = model / "checkpoints" / "latest.pt"
    try:
        return digest_file(model)
    except OSError:
        return f"unreadable:{os.path.abspath(model)}"


def settings_key(direction: str, fmt: str, quality: int) -> str:
    """The settings that change an output's pixels or encoding, as one string."""
    return f"{direction}|{fmt}|{quality}"


class Manifest:
    """One output folder's manifest, for one model and one set of settings."""

    def __init__(self, out_dir: Path, model: str, settings: str, once: bool = False) -> None:
        self.out_dir = Path(out_dir).absolute()
        self.path = self.out_dir / NAME
        self.model, self.settings = model, settings
        # once: each input is decided at most once (a batch), so an entry is dropped once
        # read and new lines are not indexed: memory shrinks as the batch goes on.
        self.once = once
        self._index: dict[str, int] = {}
        self._reader: IO[bytes] | None = None
        self._fd: int | None = None
        self.existed = self.path.is_file()
        if self.existed:
            self._load()

    # -- reading -----------------------------------------------------------------------
    def _load(self) -> None:
        lines = 0
        offset = 0
        with open(self.path, "rb") as f:
            for raw in f:
                lines += 1
                if raw.endswith(b"\n"):
                    key = _input_of(raw)
                    if key is not None:
                        self._index[key] = offset
                offset += len(raw)
        if lines > 2 * len(self._index) + 1000:
            self._compact()

    def _compact(self) -> None:
        """Keep each input's latest line, when no other process has the file open."""
        from cyclestudio.atomic import atomic_write

        lock = _lock(self.path, exclusive=True)
        if lock is None:
            return
        try:
            with open(self.path, "rb") as old, atomic_write(self.path) as new:
                index = {}
                position = 0
                for key, offset in sorted(self._index.items(), key=lambda kv: kv[1]):
                    old.seek(offset)
                    line = old.readline()
                    new.write(line)
                    index[key] = position
                    position += len(line)
            self._index = index
        finally:
            os.close(lock)

    def entry(self, source: Path) -> dict[str, Any] | None:
        """The latest line recorded for ``source``, or None."""
        offset = (self._index.pop if self.once else self._index.get)(_key(source), None)
        if offset is None:
            return None
        if self._reader is None:
            self._reader = open(self.path, "rb")  # noqa: SIM115 - kept for later lookups
        self._reader.seek(offset)
        try:
            data = json.loads(self._reader.readline())
        except ValueError:
            return None
        # Compacted by another process since we indexed it: the offset is not this line.
        if not isinstance(data, dict) or data.get("input") != _key(source):
            return None
        return data

    def decide(self, source: Path, output: Path, known: Fingerprint | None = None) -> str:
        """NEW, DONE, STALE, FOREIGN, GONE or FAILED for translating ``source`` to ``output``.

        ``known``: the input's fingerprint if it was just read (else it is compared by
        size and time, and hashed only when those changed).
        """
        entry = self.entry(source)
        exists = output.exists()
        if entry is None:
            return FOREIGN if exists else NEW
        same_work = (entry.get("model") == self.model and entry.get("settings") == self.settings
                     and self._same_content(source, entry, known))
        if entry.get("status") == "failed":
            if same_work:
                return FAILED
            return FOREIGN if exists else NEW
        ours = entry.get("output") == self._relative(output)
        if not exists:
            return GONE if (same_work and ours) else NEW
        if not ours or not _unchanged(output, entry):
            return FOREIGN  # another input's, or edited since we wrote it
        return DONE if same_work else STALE

    def _same_content(self, source: Path, entry: dict[str, Any],
                      known: Fingerprint | None) -> bool:
        if known is not None:
            return known.digest == entry.get("digest")
        try:
            st = os.stat(source)
        except OSError:
            return False
        if (st.st_size, st.st_mtime_ns) == (entry.get("size"), entry.get("mtime_ns")):
            return True
        if st.st_size != entry.get("size"):
            return False
        try:
            return digest_file(source) == entry.get("digest")  # touched, not changed
        except OSError:
            return False

    def _relative(self, output: Path) -> str:
        try:
            return Path(os.path.abspath(output)).relative_to(self.out_dir).as_posix()
        except ValueError:
            return os.path.abspath(output)

    # -- writing -----------------------------------------------------------------------
    def record(self, source: Path, fingerprint: Fingerprint | None, status: str,
               output: Path | None = None, reason: str | None = None) -> None:
        """Append what happened to ``source`` (translated to ``output``, or failed)."""
        line: dict[str, Any] = {
            "input": _key(source),
            "size": fingerprint.size if fingerprint else None,
            "mtime_ns": fingerprint.mtime_ns if fingerprint else None,
            "digest": fingerprint.digest if fingerprint else None,
            "status": status, "output": None, "out_size": None, "out_mtime_ns": None,
            "model": self.model, "settings": self.settings, "reason": reason,
            "time": round(time.time(), 3),
        }
        if output is not None:
            line["output"] = self._relative(output)
            try:
                st = os.stat(output)
                line["out_size"], line["out_mtime_ns"] = st.st_size, st.st_mtime_ns
            except OSError:
                pass
        data = (json.dumps(line) + "\n").encode("utf-8")
        fd = self._open_for_append()
        if fd is None:
            return
        try:
            os.write(fd, data)
            end = os.lseek(fd, 0, os.SEEK_CUR)
        except OSError:
            return  # a full or read-only disk: the outputs stand; the record is a help
        if not self.once:
            self._index[line["input"]] = end - len(data)

    def _open_for_append(self) -> int | None:
        if self._fd is None:
            try:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
            except OSError:
                return None
            # A line torn by a crash must not swallow the next one.
            if os.fstat(fd).st_size and not _ends_with_newline(self.path):
                os.write(fd, b"\n")
            _share(fd)
            self._fd = fd
        return self._fd

    def close(self) -> None:
        """Flush the appended lines to disk and close the files."""
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def _key(source: Path) -> str:
    return os.path.abspath(source)


def _input_of(raw: bytes) -> str | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    key = data.get("input") if isinstance(data, dict) else None
    return key if isinstance(key, str) else None


def _unchanged(output: Path, entry: dict[str, Any]) -> bool:
    try:
        st = os.stat(output)
    except OSError:
        return False
    return (st.st_size, st.st_mtime_ns) == (entry.get("out_size"), entry.get("out_mtime_ns"))


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _lock(path: Path, exclusive: bool) -> int | None:
    """An flock on ``path`` (None if another process holds one, or there is no flock)."""
    try:
        import fcntl
    except ImportError:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _share(fd: int) -> None:
    """Hold a shared lock while appending: compaction waits until nobody appends."""
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except (ImportError, OSError):
        pass
