"""What the GUI benchmarks and docs/make_screenshots.py share: a display and a UI clock."""

from __future__ import annotations

import os
import subprocess
import time


def start_xvfb() -> tuple[subprocess.Popen, str]:
    """Xvfb on a free display number (it picks one and says which when it is ready)."""
    read, write = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1400x900x24",
                             "-nolisten", "tcp"], pass_fds=(write,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()  # written once the server is ready
    if not number:
        raise SystemExit("Xvfb did not start")
    return xvfb, f":{number}"


class UiGaps:
    """A 5 ms QTimer on the UI thread; the gaps between its ticks are the UI's stalls."""

    def __init__(self, interval_ms: int = 5) -> None:
        from PySide6.QtCore import QTimer

        self.gaps: list[float] = []
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now

    def start(self) -> None:
        self.reset()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def reset(self) -> None:
        """Forget the gaps so far (start a new measurement)."""
        self.gaps.clear()
        self._last = time.perf_counter()

    def worst(self, skip: int = 0) -> tuple[float, float]:
        """(worst gap, 99th-percentile gap) in seconds, ignoring the first ``skip`` ticks."""
        gaps = sorted(self.gaps[skip:], reverse=True)
        return gaps[0], gaps[len(gaps) // 100]
