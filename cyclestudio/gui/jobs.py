"""JobRunner: one worker process (`python -m cyclestudio JOB ... --events`) seen as Qt signals.

The worker writes one JSON event per stdout line (docs/events.md) and reads control
lines on stdin. stderr is its log: the last lines are kept to show when it fails.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections import deque
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QEventLoop, QObject, QProcess, QProcessEnvironment, QTimer, Signal

from cyclestudio.protocol import TERMINAL as TERMINAL_EVENTS

LOG_LINES = 40


def worker_command(args: Sequence[str]) -> list[str]:
    """The command line of a worker running the cyclestudio subcommand ``args``."""
    return [sys.executable, "-m", "cyclestudio", *args]


class JobRunner(QObject):
    """Start a worker, parse its events, send it control lines, report how it ended.

    ``events`` carries a list of event dicts (all complete lines from one read), so
    a worker streaming at full speed costs the UI one slot call per read, not per line.
    ``ended`` carries ``(exit_code, crashed, last_terminal_event_or_None)``.
    """

    events = Signal(object)  # a list; `object` hands it over without converting each dict
    ended = Signal(int, bool, object)
    log = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.process: QProcess | None = None
        self.log_tail: deque[str] = deque(maxlen=LOG_LINES)
        self.terminal_event: dict[str, Any] | None = None
        self.args: list[str] = []
        self._out = b""
        self._err = b""
        self._stopping = False
        self._own_group = False

    # -- control ---------------------------------------------------------------
    def start(self, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        """Run ``cyclestudio ARGS`` as a worker (``--events`` is the caller's to add)."""
        if self.running():
            raise RuntimeError("a job is already running")
        self.args = list(args)
        self.log_tail.clear()
        self.terminal_event = None
        self._out = self._err = b""
        self._stopping = False
        command = worker_command(self.args)
        process = QProcess(self)
        environment = QProcessEnvironment.systemEnvironment()
        environment.insert("PYTHONUNBUFFERED", "1")
        if not environment.contains("OMP_WAIT_POLICY"):
            # torch's OpenMP threads otherwise spin at every barrier; on a small machine
            # where the window (or anything else) also wants a core, a CPU run then
            # crawls (measured: 60 ms -> 5 s per iteration on 2 cores with one busy).
            environment.insert("OMP_WAIT_POLICY", "PASSIVE")
        for key, value in (env or {}).items():
            environment.insert(key, value)
        process.setProcessEnvironment(environment)
        self._own_group = _start_in_new_session(process)
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._error)
        self.process = process
        process.start(command[0], command[1:])

    def running(self) -> bool:
        """True while the worker process exists."""
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def send(self, command: str) -> None:
        """Write a control line (`pause`, `resume`, `stop`, `sample`) to the worker."""
        if self.running():
            assert self.process is not None
            self.process.write((command + "\n").encode())
            if command == "stop":
                self._stopping = True

    def kill(self) -> None:
        """End the worker and every process it started at once (checkpoints stay loadable)."""
        if self.running():
            assert self.process is not None
            pid = int(self.process.processId())
            if self._own_group and pid > 0:
                # The worker leads its own session: its image-decoding processes go too.
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    self.process.kill()
            else:
                self.process.kill()

    def stop_and_wait(self, grace_ms: int) -> bool:
        """Ask the worker to stop and wait for it while the UI keeps running.

        True if it ended by itself within ``grace_ms``; False if it had to be killed.
        """
        if not self.running():
            return True
        assert self.process is not None
        self.send("stop")
        loop = QEventLoop()
        timer = QTimer()
        timer.setSingleShot(True)
        timer.timeout.connect(loop.quit)
        self.process.finished.connect(loop.quit)
        timer.start(grace_ms)
        if self.running():
            loop.exec()
        timer.stop()
        if not self.running():
            return True
        self.kill()
        self.wait(5000)
        return False

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the worker ends (for tests and shutdown only)."""
        if not self.running():
            return True
        assert self.process is not None
        return self.process.waitForFinished(msecs)

    # -- reading -----------------------------------------------------------------
    def _read_stdout(self) -> None:
        assert self.process is not None
        self._out += bytes(self.process.readAllStandardOutput().data())
        if b"\n" not in self._out:
            return
        *lines, self._out = self._out.split(b"\n")
        parsed = [e for e in (self._parse(line) for line in lines) if e is not None]
        if parsed:
            for event in parsed:
                if event.get("event") in TERMINAL_EVENTS:
                    self.terminal_event = event
            self.events.emit(parsed)

    def _parse(self, line: bytes) -> dict[str, Any] | None:
        text = line.decode("utf-8", "replace").strip()
        if not text:
            return None
        try:
            event = json.loads(text)
        except ValueError:
            event = None
        if not isinstance(event, dict) or "event" not in event:
            # Not an event: a library printed to stdout. Keep it as log.
            self._add_log(text)
            return None
        return event

    def _read_stderr(self) -> None:
        assert self.process is not None
        self._err += bytes(self.process.readAllStandardError().data())
        if b"\n" not in self._err:
            return
        *lines, self._err = self._err.split(b"\n")
        for line in lines:
            self._add_log(line.decode("utf-8", "replace").rstrip("\r"))

    def _add_log(self, text: str) -> None:
        # A progress bar redrawn with \r: keep only its last state.
        text = text.rsplit("\r", 1)[-1]
        self.log_tail.append(text)
        self.log.emit(text)

    def _flush(self) -> None:
        if self.process is None:
            return
        self._read_stdout()
        self._read_stderr()
        if self._out.strip():
            event = self._parse(self._out)
            self._out = b""
            if event is not None:
                if event.get("event") in TERMINAL_EVENTS:
                    self.terminal_event = event
                self.events.emit([event])
        if self._err.strip():
            self._add_log(self._err.decode("utf-8", "replace"))
            self._err = b""

    def _finished(self, exit_code: int, status: QProcess.ExitStatus) -> None:
        self._flush()
        crashed = status == QProcess.ExitStatus.CrashExit
        self.ended.emit(-1 if crashed else exit_code, crashed, self.terminal_event)

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._add_log(f"could not start {' '.join(worker_command(self.args))}")
            self.ended.emit(-1, True, None)


def _start_in_new_session(process: QProcess) -> bool:
    """Make the worker a session (and process group) leader, where Qt offers it.

    Then killing the group ends the worker's own children (DataLoader workers) too,
    and a Ctrl-C meant for the app's terminal does not reach the worker.
    """
    flags = getattr(QProcess, "UnixProcessFlag", None)
    flag = getattr(flags, "CreateNewSession", None) if flags is not None else None
    if flag is None or not hasattr(os, "killpg"):
        return False
    process.setUnixProcessParameters(flag)
    return True


def describe_end(exit_code: int, crashed: bool, event: dict[str, Any] | None) -> str:
    """Why a worker ended, in words, for a status line or a dialog."""
    if event is not None and event.get("event") == "error":
        message = str(event.get("message", "the job failed"))
        hint = event.get("hint")
        return f"{message}\n{hint}" if hint else message
    if crashed:
        return "The worker was killed or crashed."
    if event is None:
        return f"The worker ended without a result (exit code {exit_code})."
    return f"The worker ended ({event.get('event')})."



class Query(QObject):
    """A one-shot worker that prints one JSON document (`plugins list --json`, `devices --json`).

    ``done`` carries ``(result, error)``: the parsed JSON and "", or None and why it failed.
    """

    done = Signal(object, str)

    def __init__(self, args: Sequence[str], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.args = list(args)
        self.process = QProcess(self)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._error)
        self._reported = False

    def start(self) -> None:
        """Start the query; ``done`` follows."""
        command = worker_command(self.args)
        self.process.start(command[0], command[1:])

    def _finished(self, exit_code: int, status: QProcess.ExitStatus) -> None:
        out = bytes(self.process.readAllStandardOutput().data()).decode("utf-8", "replace")
        err = bytes(self.process.readAllStandardError().data()).decode("utf-8", "replace")
        if exit_code == 0 and status == QProcess.ExitStatus.NormalExit:
            try:
                self._report(json.loads(out), "")
                return
            except ValueError:
                pass
        tail = "\n".join(err.strip().splitlines()[-5:])
        self._report(None, f"`cyclestudio {' '.join(self.args)}` failed: {tail or out[-300:]}")

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._report(None, f"could not start {' '.join(worker_command(self.args))}")

    def _report(self, result: object, error: str) -> None:
        if not self._reported:
            self._reported = True
            self.done.emit(result, error)
