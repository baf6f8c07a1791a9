"""The worker side of the event protocol: JSON lines out, control lines in.

See docs/events.md for the schema. Without ``--events`` the same calls draw a
progress line on the terminal instead.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from cyclestudio.jobs.terminal import Terminal, resume_command, validation_line
from cyclestudio.protocol import COMMANDS, SCHEMA

__all__ = ["COMMANDS", "SCHEMA", "Control", "Events", "RateMeter", "resume_command",
           "validation_line"]


class Events:
    """Emit events: one JSON object per stdout line for the app, or (``json_lines``
    false) drawn for a person by :class:`~cyclestudio.jobs.terminal.Terminal`."""

    def __init__(
        self,
        json_lines: bool,
        out: TextIO | None = None,
        on_closed: Callable[[], None] | None = None,
        job: str = "train",
    ) -> None:
        self.json_lines = json_lines
        self.out = out or sys.stdout
        self.closed = False
        self._on_closed = on_closed
        self._lock = threading.Lock()
        self.terminal = Terminal(job)

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
                    self.terminal.show(event, fields)
            except (BrokenPipeError, ValueError, OSError):
                # The app that read our stdout is gone: stop cleanly (checkpoint first).
                self.closed = True
                self._silence_stdout()
                if self._on_closed is not None:
                    self._on_closed()

    def _silence_stdout(self) -> None:
        """Point a closed stdout at the null device, so the bytes stuck in its buffer do
        not fail again (with a traceback) when the process exits."""
        if self.out is not sys.stdout:
            return
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass


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
