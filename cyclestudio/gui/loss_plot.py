"""The loss plot: every loss curve, each toggled on or off, with a smoothing slider.

Points arrive in batches (live events, or metrics.jsonl read off the UI thread);
the plot is redrawn at most a few times a second so a fast run never floods the UI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

REDRAW_MS = 250
ORDER = ["G_A", "G_B", "D_A", "D_B", "cycle_A", "cycle_B", "idt_A", "idt_B"]
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f"]


def read_metrics(path: Path) -> dict[str, tuple[list[float], list[float]]]:
    """Every loss in a metrics.jsonl as {name: (iterations, values)}; bad lines skipped."""
    curves: dict[str, tuple[list[float], list[float]]] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                    it = float(row["iteration"])
                    losses = row["losses"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash
                for name, value in losses.items():
                    if isinstance(value, (int, float)):
                        xs, ys = curves.setdefault(name, ([], []))
                        xs.append(it)
                        ys.append(float(value))
    except OSError:
        pass
    return curves


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """A trailing moving average over ``window`` points (shorter at the start)."""
    if window <= 1 or len(values) < 2:
        return values
    c = np.cumsum(np.insert(values, 0, 0.0))
    n = np.arange(1, len(values) + 1)
    lo = np.maximum(n - window, 0)
    return (c[n] - c[lo]) / (n - lo)


class Series:
    """A growing (x, y) series in numpy arrays, so redraws do not copy Python lists."""

    def __init__(self) -> None:
        self._x = np.empty(256)
        self._y = np.empty(256)
        self.n = 0

    def extend(self, xs, ys) -> None:
        """Append points."""
        xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        need = self.n + len(xs)
        if need > len(self._x):
            size = max(need, 2 * len(self._x))
            self._x = np.resize(self._x, size)
            self._y = np.resize(self._y, size)
        self._x[self.n:need] = xs
        self._y[self.n:need] = ys
        self.n = need

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.n]


class _ReadSignals(QObject):
    read = Signal(int, dict)


class _Read(QRunnable):
    def __init__(self, token: int, path: Path, signals: _ReadSignals) -> None:
        super().__init__()
        self.token, self.path, self.signals = token, path, signals

    def run(self) -> None:
        self.signals.read.emit(self.token, read_metrics(self.path))


class LossPlot(QWidget):
    """pyqtgraph loss curves against iteration, with toggles and smoothing."""

    loaded = Signal()  # a metrics.jsonl finished loading

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.series: dict[str, Series] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.toggles: dict[str, QCheckBox] = {}
        self._dirty = False
        self._token = 0
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _ReadSignals(self)
        self._signals.read.connect(self._read)

        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "iteration")
        self.plot.setLabel("left", "loss")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.addLegend(offset=(-10, 10))
        self.plot.setClipToView(True)
        self.plot.setDownsampling(auto=True, mode="peak")

        self.toggle_row = QHBoxLayout()
        self.toggle_row.addWidget(QLabel("Show:"))
        self.toggle_row.addStretch(1)
        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setRange(1, 200)
        self.smoothing.setValue(10)
        self.smoothing.setFixedWidth(200)
        self.smoothing.setToolTip("Average each curve over this many logged points")
        self.smoothing_label = QLabel()
        self.smoothing.valueChanged.connect(self._smoothing_changed)
        self._smoothing_changed(self.smoothing.value())
        smoothing_row = QHBoxLayout()
        smoothing_row.addWidget(self.smoothing_label)
        smoothing_row.addWidget(self.smoothing)
        smoothing_row.addStretch(1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addLayout(self.toggle_row)
        layout.addLayout(smoothing_row)

        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw_if_dirty)
        self._timer.start()

    def set_background(self, dark: bool) -> None:
        """Match the plot to the theme."""
        self.plot.setBackground("#1e1e1e" if dark else "w")
        colour = "#ccc" if dark else "#333"
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setPen(colour)
            self.plot.getAxis(axis).setTextPen(colour)

    def clear(self) -> None:
        """Forget every point (another run is shown)."""
        self._token += 1
        self.series.clear()
        for curve in self.curves.values():
            self.plot.removeItem(curve)
        self.curves.clear()
        for box in self.toggles.values():
            self.toggle_row.removeWidget(box)
            box.deleteLater()
        self.toggles.clear()
        self._dirty = False

    def load(self, metrics: Path) -> None:
        """Replot from a run's metrics.jsonl (read in the background)."""
        self.clear()
        self._pool.start(_Read(self._token, Path(metrics), self._signals))

    def _read(self, token: int, curves: dict) -> None:
        if token != self._token:
            return
        for name, (xs, ys) in curves.items():
            self._ensure(name)
            # Live points may have come in while the file was read: keep the later ones.
            old = self.series[name]
            keep = old.x > (xs[-1] if xs else float("-inf"))
            fresh = Series()
            fresh.extend(xs, ys)
            fresh.extend(old.x[keep], old.y[keep])
            self.series[name] = fresh
        self._dirty = True
        self._redraw_if_dirty()
        self.loaded.emit()

    def add(self, iteration: float, losses: dict[str, Any]) -> None:
        """One logged step from a progress event."""
        for name, value in losses.items():
            if not isinstance(value, (int, float)):
                continue
            self._ensure(name)
            self.series[name].extend([float(iteration)], [float(value)])
        self._dirty = True

    def points(self) -> int:
        """How many points the plot holds, over all curves."""
        return sum(s.n for s in self.series.values())

    def _ensure(self, name: str) -> None:
        if name in self.curves:
            return
        self.series[name] = Series()
        known = ORDER.index(name) if name in ORDER else len(ORDER) + len(self.curves)
        colour = COLOURS[known % len(COLOURS)]
        curve = self.plot.plot([], [], pen=pg.mkPen(colour, width=1.5), name=name)
        self.curves[name] = curve
        box = QCheckBox(name)
        box.setChecked(True)
        box.setStyleSheet(f"QCheckBox {{ color: {colour}; }}")
        box.toggled.connect(lambda on, c=curve: c.setVisible(on))
        self.toggles[name] = box
        self.toggle_row.insertWidget(len(self.toggles), box)

    def _smoothing_changed(self, value: int) -> None:
        self.smoothing_label.setText(f"Smoothing: {value}" if value > 1 else "Smoothing: off")
        self._dirty = True

    def _redraw_if_dirty(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        window = self.smoothing.value()
        for name, curve in self.curves.items():
            series = self.series[name]
            curve.setData(series.x.copy(), smooth(series.y, window))
