"""Memory and time per iteration of the settings on the Training page, before Start.

Runs `cyclestudio train ... --estimate --events` as a worker (a few real training steps
on random images; the window never imports torch) a moment after the settings stop
changing, while the page is on screen, one at a time: a newer request replaces an
older one still running.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QLabel, QWidget

from cyclestudio.gui.jobs import Query

DELAY_MS = 1500  # after the last change


class EstimateLine(QLabel):
    """"About 0.7 GiB, 1.2 s per iteration on cpu": or why the settings will not fit."""

    estimated = Signal(object)  # the estimate event (a dict), or None when it failed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setStyleSheet("color: gray")
        self.enabled = True
        self.args: list[str] | None = None
        self.result: dict[str, Any] | None = None
        self._asked: list[str] | None = None
        self._query: Query | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DELAY_MS)
        self._timer.timeout.connect(self._start)

    def request(self, args: Sequence[str]) -> None:
        """Estimate these `train` flags soon (unless they were the last ones estimated)."""
        self.args = list(args)
        if self.enabled and self.args != self._asked:
            self._timer.start()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self.enabled and self.args is not None and self.args != self._asked:
            self._timer.start()

    def _start(self) -> None:
        if not self.isVisible() or self.args is None:
            return  # shown again later: showEvent asks then
        if self._query is not None:
            self._query.process.kill()
            self._query.done.disconnect()
        self._asked = list(self.args)
        self.setText("Estimating memory and time per iteration…")
        self._query = Query(["train", *self._asked, "--estimate", "--events"], self)
        self._query.done.connect(self._done)
        self._query.start()

    def _done(self, result: object, error: str) -> None:
        self._query = None
        if isinstance(result, dict) and result.get("event") == "estimate":
            self.result = result
            fits = bool(result.get("fits"))
            self.setStyleSheet("color: gray" if fits else "color: #d33")
            self.setText(("" if fits else "⚠ ") + str(result.get("message", "")))
            self.estimated.emit(result)
            return
        self.result = None
        message = _error_message(error)
        self.setStyleSheet("color: #d33")
        self.setText(f"Cannot estimate these settings: {message}")
        self.estimated.emit(None)

    def stop(self) -> None:
        """End a running estimate (the window is closing)."""
        self._timer.stop()
        if self._query is not None:
            self._query.process.kill()
            self._query.process.waitForFinished(3000)


def _error_message(error: str) -> str:
    """The job's own error line if the failure output holds an error event."""
    for line in error.splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            event = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "error":
            return str(event.get("message", "")) + (
                f" ({event['hint']})" if event.get("hint") else "")
    return error.splitlines()[-1] if error else "the estimate failed"
