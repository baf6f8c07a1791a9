"""A run folder, read and written in one place: its layout, state, metrics, lock and model.

::

    RUN/config.json        the whole resolved configuration
    RUN/metrics.jsonl      every logged loss and validation figure, append-only
    RUN/samples/           preview grids, samples/00001200.png
    RUN/checkpoints/       latest.pt, best.pt, epoch_0005.pt
    RUN/model.csmodel      the exported translator (self-describing)
    RUN/status.json        how the last process on it ended (running, stopped, ...)
    RUN/.lock              held by the process training it; names that process

Neither torch nor Qt is imported here: the app reads run folders and model headers
through this module, and so do the jobs.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from cyclestudio.atomic import pid_alive
from cyclestudio.errors import UserError

CONFIG = "config.json"
METRICS = "metrics.jsonl"
SAMPLES = "samples"
CHECKPOINTS = "checkpoints"
LATEST = "latest.pt"
BEST = "best.pt"
MODEL = "model.csmodel"
STATUS = "status.json"
LOCK = ".lock"

# What state() can say, in the order a run goes through them.
STATES = ("new", "running", "stopped", "crashed", "failed", "finished")

# Model files: safetensors with our description as JSON under this metadata key.
MODEL_EXTENSION = ".csmodel"
MODEL_FORMAT = "cyclestudio.model"
MODEL_METADATA_KEY = "cyclestudio"
_MAX_HEADER = 100_000_000


class RunFolder:
    """One run folder's paths and the files that describe it."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # -- layout ------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def samples(self) -> Path:
        return self.path / SAMPLES

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def latest(self) -> Path:
        return self.checkpoints / LATEST

    @property
    def best(self) -> Path:
        return self.checkpoints / BEST

    @property
    def model(self) -> Path:
        return self.path / MODEL

    @property
    def status_file(self) -> Path:
        return self.path / STATUS

    @staticmethod
    def sample_name(iteration: int) -> str:
        """A sample grid's path relative to the run, e.g. ``samples/00001200.png``."""
        return f"{SAMPLES}/{iteration:08d}.png"

    @staticmethod
    def checkpoint_name(name: str) -> str:
        """A checkpoint's path relative to the run, e.g. ``checkpoints/latest.pt``."""
        return f"{CHECKPOINTS}/{name}"

    def relative(self, path: Path) -> str:
        """``path`` relative to the run folder, with forward slashes."""
        return Path(path).relative_to(self.path).as_posix()

    # -- what is there -----------------------------------------------------------------
    def is_run(self) -> bool:
        """True if the folder holds a run's config.json."""
        return self.config.is_file()

    def resumable(self) -> bool:
        """True if a checkpoint exists to continue from."""
        return self.latest.is_file()

    def read_config(self) -> dict[str, Any]:
        """config.json as plain data ({} if it is missing or damaged)."""
        try:
            data = json.loads(self.config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def read_status(self) -> dict[str, Any]:
        """status.json as plain data ({} if there is none)."""
        try:
            data = json.loads(self.status_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write_status(self, state: str, **fields: Any) -> None:
        """Record how the process working on this run stands (atomically)."""
        from cyclestudio.project import write_json_atomic

        assert state in STATES, state
        write_json_atomic(self.status_file, {
            "state": state, "pid": os.getpid(), "host": socket.gethostname(),
            "time": round(time.time(), 3), **fields})

    def holder(self) -> dict[str, Any] | None:
        """The live process holding the run's lock (pid, host, since), or None.

        Read from the lock file's content and checked against the process table;
        used for display. Only the lock itself (see :meth:`lock`) guards the run.
        """
        try:
            info = json.loads((self.path / LOCK).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(info, dict) or not info.get("held"):
            return None
        if info.get("host") != socket.gethostname():
            return info  # another machine's process: cannot check, assume it is alive
        return info if pid_alive(int(info.get("pid") or 0)) else None

    def state(self) -> str:
        """new, running, stopped, crashed, failed or finished."""
        if self.holder() is not None:
            return "running"
        recorded = str(self.read_status().get("state", ""))
        if recorded == "running":
            return "crashed"  # its process ended without saying how
        if recorded in STATES and recorded != "new":
            return recorded
        # Runs made before status.json existed.
        if self.model.is_file():
            return "finished"
        return "stopped" if self.resumable() else "new"

    def describe(self) -> str:
        """The state in words for a run list: "stopped, can resume", "running in another
        process (pid 123)", ..."""
        state = self.state()
        if state == "running":
            return f"running in another process (pid {(self.holder() or {}).get('pid', '?')})"
        words = {"new": "no checkpoint"}.get(state, state)
        if state in ("stopped", "crashed", "failed") and self.resumable():
            return f"{words}, can resume"
        return words

    # -- metrics -----------------------------------------------------------------------
    def append_metrics(self, line: dict[str, Any]) -> None:
        """Add one line to metrics.jsonl."""
        with open(self.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every readable line of metrics.jsonl (a line cut short by a crash is skipped)."""
        rows: list[dict[str, Any]] = []
        try:
            with open(self.metrics, encoding="utf-8") as f:
                for text in f:
                    try:
                        row = json.loads(text)
                    except ValueError:
                        continue
                    if isinstance(row, dict) and isinstance(row.get("iteration"), int | float):
                        rows.append(row)
        except OSError:
            pass
        return rows

    def truncate_metrics(self, iteration: int) -> None:
        """Drop lines logged after ``iteration`` (a resume continues from its checkpoint)."""
        from cyclestudio.atomic import atomic_write

        if not self.metrics.exists():
            return
        kept = [row for row in self.read_metrics() if row["iteration"] <= iteration]
        with atomic_write(self.metrics, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row) + "\n" for row in kept)

    # -- the lock ----------------------------------------------------------------------
    @contextmanager
    def lock(self, purpose: str = "train") -> Iterator[None]:
        """Hold the run for this process, or raise UserError naming who holds it.

        An OS lock (released by the kernel when its process dies, so a killed run
        never leaves a stale lock) on ``RUN/.lock``; the file also names the holder
        for :meth:`holder` and for the refusal message.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        path = self.path / LOCK
        f = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole run
        try:
            if not _try_lock(f):
                f.seek(0)
                try:
                    who = json.loads(f.read() or "{}")
                except ValueError:
                    who = {}
                pid, host = who.get("pid", "?"), who.get("host", "?")
                raise UserError(
                    f"{self.path} is in use by another cyclestudio process (pid {pid} on "
                    f"{host}, {who.get('purpose', 'training')} since "
                    f"{time.strftime('%H:%M', time.localtime(who.get('since', 0)))})",
                    "wait for it to end or stop it (in the app: Stop); two processes on one "
                    "run would overwrite each other's checkpoints and metrics")
            _write_holder(f, {"held": True, "pid": os.getpid(), "host": socket.gethostname(),
                              "since": round(time.time(), 3), "purpose": purpose})
            try:
                yield
            finally:
                _write_holder(f, {"held": False})
                _unlock(f)
        finally:
            f.close()


def _write_holder(f: IO[str], info: dict[str, Any]) -> None:
    f.seek(0)
    f.truncate()
    f.write(json.dumps(info))
    f.flush()


def _try_lock(f: IO[str]) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _unlock(f: IO[str]) -> None:
    try:
        import fcntl
    except ImportError:
        import msvcrt

        try:
            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# -- model files -------------------------------------------------------------------------
def read_model_header(path: Path) -> dict[str, Any]:
    """The description a ``.csmodel`` file carries, read without torch or safetensors.

    A safetensors file starts with an 8-byte little-endian length and a JSON header
    whose ``__metadata__`` holds our JSON under ``cyclestudio``. Raises UserError for a
    file that is not a readable cyclestudio model.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > _MAX_HEADER:
                raise ValueError(f"a header of {size} bytes")
            header = json.loads(f.read(size))
        text = header["__metadata__"][MODEL_METADATA_KEY]
        info = json.loads(text)
    except FileNotFoundError:
        raise UserError(f"{path} does not exist", "give a .csmodel file or a run folder") from None
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise UserError(
            f"{path} is not a readable cyclestudio model file ({type(exc).__name__})",
            "the file is damaged or is not a .csmodel; export it again from its run",
        ) from None
    if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT:
        raise UserError(f"{path} is not a cyclestudio model file",
                        "give a .csmodel file, a run folder or a checkpoint")
    return info


def model_domains(model: Path) -> tuple[str, str] | None:
    """The (A, B) domain names a model file or run folder records, or None."""
    model = Path(model)
    try:
        if model.is_dir():
            data = RunFolder(model).read_config().get("data", {})
        elif model.suffix.lower() == ".onnx":
            from cyclestudio.exports import read_onnx_header

            data = read_onnx_header(model)
        else:
            data = read_model_header(model)
        names = data.get("a_name"), data.get("b_name")
    except (UserError, AttributeError):
        return None
    if all(isinstance(n, str) and n for n in names):
        return str(names[0]), str(names[1])
    return None
