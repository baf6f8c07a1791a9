"""The worker side of the event protocol: JSON lines out, control lines in.

See docs/events.md for the schema. Without ``--events`` the same calls draw a
progress line on the terminal instead.
"""

from __future__ import annotations

import json
import math
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from cyclestudio.protocol import COMMANDS, SCHEMA

__all__ = ["COMMANDS", "SCHEMA", "Control", "Events", "RateMeter", "resume_command"]


def _fmt_time(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def resume_command(run: object) -> str:
    """The command that continues the run folder ``run``, ready to paste in any folder."""
    import shlex

    return f"cyclestudio train --resume {shlex.quote(str(run))}" if run else (
        "cyclestudio train --resume RUN_FOLDER")


def validation_line(iteration: object, figures: dict[str, Any], best: bool) -> str:
    """A validation pass in one line: per direction, the distance to the target domain
    against the untranslated inputs', the cycle error, and PSNR against truth if known."""
    parts = []
    for side, arrow in (("A", "A→B"), ("B", "B→A")):
        if f"swd_{side}" not in figures:
            continue
        text = (f"{arrow} distance {figures[f'swd_{side}']:.3f} "
                f"(input {figures[f'swd_{side}_input']:.3f}), "
                f"cycle {figures[f'cycle_{side}']:.3f}")
        if f"psnr_{side}" in figures:
            text += (f", {figures[f'psnr_{side}']:.2f} dB vs truth "
                     f"(input {figures[f'psnr_{side}_input']:.2f} dB)")
        parts.append(text)
    return f"validation at {iteration}: " + "; ".join(parts) + (" — best so far" if best else "")


def _training_line(event: str, f: dict[str, Any]) -> str:
    """A training event as a sentence for a person at a terminal."""
    if event == "started":
        images = f.get("images", {})
        verb = f"Resuming at iteration {f.get('iteration')}" if f.get("resumed") else "Training"
        return (
            f"{verb}: {f.get('generator')} + {f.get('discriminator')} on {f.get('device')}, "
            f"{images.get('A')} A and {images.get('B')} B images, "
            f"{f.get('iterations_per_epoch')} iterations per epoch, until iteration "
            f"{f.get('total_iterations')}\n  run folder: {f.get('run')}"
        )
    if event == "validation":
        return validation_line(f.get("iteration"), f.get("figures") or {}, bool(f.get("best")))
    if event == "checkpoint":
        return f"saved {f.get('path')} at iteration {f.get('iteration')}"
    if event == "sample":
        return f"sample {f.get('path')}"
    if event == "paused":
        return f"paused at iteration {f.get('iteration')}"
    if event == "resumed":
        return f"resumed at iteration {f.get('iteration')}"
    if event == "stopped":
        return (
            f"stopped at iteration {f.get('iteration')}, saved {f.get('checkpoint')}; "
            f"continue with: {resume_command(f.get('run'))}"
        )
    if event == "finished":
        model = f.get("model")
        return f"finished at iteration {f.get('iteration')}" + (
            f"; model: {model}" if model else ""
        )
    return ""


class Events:
    """Emit events: one JSON object per stdout line, or a human progress display."""

    def __init__(
        self,
        json_lines: bool,
        out: TextIO | None = None,
        on_closed: Callable[[], None] | None = None,
    ) -> None:
        self.json_lines = json_lines
        self.out = out or sys.stdout
        self.closed = False
        self._on_closed = on_closed
        self._lock = threading.Lock()
        self._bar_open = False

    def emit(self, event: str, **fields: Any) -> None:
        """Send one event. If the reader has gone away, note it and ask the job to stop."""
        with self._lock:
            if self.closed:
                return
            try:
                if self.json_lines:
                    line = json.dumps({"event": event, "schema": SCHEMA, **fields}, default=str)
                    self.out.write(line + "\n")
                    self.out.flush()
                else:
                    self._human(event, fields)
            except (BrokenPipeError, ValueError, OSError):
                # The app that read our stdout is gone: stop cleanly (checkpoint first).
                self.closed = True
                if self._on_closed is not None:
                    self._on_closed()

    def _human(self, event: str, f: dict[str, Any]) -> None:
        tty = getattr(sys.stderr, "isatty", lambda: False)()
        if event == "progress":
            done, total = f.get("iteration", 0), f.get("total_iterations") or f.get("total") or 0
            width = 24
            filled = int(width * done / total) if total else 0
            losses = " ".join(f"{k}={v:.3f}" for k, v in (f.get("losses") or {}).items())
            rate = f.get("images_per_s")
            text = (
                f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total or '?'}"
                + (f" epoch {f['epoch']}" if "epoch" in f else "")
                + (f" {rate:.1f} img/s" if rate else "")
                + f" ETA {_fmt_time(f.get('eta_s'))} {losses}"
            )
            if tty:
                sys.stderr.write("\r\033[K" + text)
                self._bar_open = True
            else:
                sys.stderr.write(text + "\n")
            sys.stderr.flush()
            return
        if self._bar_open:
            sys.stderr.write("\n")
            self._bar_open = False
        message = f.get("message")
        if event == "error":
            hint = f.get("hint")
            sys.stderr.write(f"error: {message}" + (f" ({hint})" if hint else "") + "\n")
        elif event == "warning":
            sys.stderr.write(f"warning: {message}\n")
        elif message:
            sys.stderr.write(f"{message}\n")
        else:
            text = _training_line(event, f)
            if text:
                sys.stderr.write(text + "\n")
        sys.stderr.flush()


class Control:
    """Commands for a running job: lines read from stdin, plus Ctrl-C and SIGTERM as stop."""

    def __init__(self, read_stdin: bool) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        self.interrupts = 0
        self.stop_requested = False
        if read_stdin:
            threading.Thread(target=self._read, name="control-stdin", daemon=True).start()

    def _read(self) -> None:
        # Read the file descriptor, not sys.stdin: a thread blocked in sys.stdin holds
        # its buffer's lock, a forked DataLoader worker inherits that lock held, and the
        # worker then deadlocks when multiprocessing closes stdin in the child (the run
        # sat at iteration 0 forever). os.read holds no Python-level lock.
        # End of input is not a command: a headless run may have stdin at /dev/null.
        # An app that goes away is noticed when writing events fails (see Events).
        try:
            fd = sys.stdin.fileno()
        except (AttributeError, OSError, ValueError):
            return  # no stdin at all (pythonw, a closed descriptor)
        pending = b""
        while True:
            try:
                chunk = os.read(fd, 4096)
            except InterruptedError:
                continue
            except OSError:
                return
            if not chunk:
                return
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                command = line.decode("utf-8", "replace").strip().lower()
                if command:
                    self._queue.put(command)

    def install_signal_handlers(self) -> None:
        """First Ctrl-C/SIGTERM asks for a clean stop; a second one aborts at once."""

        def handler(signum: int, _frame: Any) -> None:
            self.interrupts += 1
            if self.interrupts > 1:
                raise KeyboardInterrupt
            self.stop_requested = True
            self._queue.put("stop")

        signal.signal(signal.SIGINT, handler)
        if hasattr(signal, "SIGTERM"):
            signal.signal(signal.SIGTERM, handler)

    def put(self, command: str) -> None:
        """Queue a command as if it came from stdin."""
        self._queue.put(command)

    def poll(self) -> list[str]:
        """Commands received since the last poll, oldest first."""
        commands = []
        while True:
            try:
                commands.append(self._queue.get_nowait())
            except queue.Empty:
                return commands

    def wait(self, timeout: float) -> str | None:
        """Block until a command arrives (or the timeout passes)."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None


class RateMeter:
    """Images per second over a sliding window, and the time left."""

    def __init__(self, window: int = 50) -> None:
        self.window = window
        self._marks: list[tuple[float, int]] = []

    # Marks count work done in this process only: a resumed run starts marking at
    # its checkpoint's iteration, never at 0 (that read as thousands of images/s).

    def mark(self, done: int) -> None:
        self._marks.append((time.perf_counter(), done))
        del self._marks[: -self.window]

    def reset(self) -> None:
        """Forget the history (after a pause, so the pause does not count)."""
        self._marks.clear()

    def rate(self) -> float | None:
        if len(self._marks) < 2:
            return None
        (t0, n0), (t1, n1) = self._marks[0], self._marks[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else None
