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
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

REDRAW_MS = 250
# Points drawn per curve: about one per pixel column of a wide plot. Drawing more only
# costs paint time on the UI thread (a long run logs millions).
MAX_DRAWN = 2000
ORDER = ["G_A", "G_B", "D_A", "D_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "colour_A",
         "colour_B"]
HIDDEN_LOSSES = {"colour_A", "colour_B"}  # plotted once the user ticks them
# One palette for both themes: each colour contrasts at least 3.5:1 with the light (white)
# and the dark (#1e1e1e) plot background, so curves and the coloured legend boxes stay
# readable on both (tests/test_gui_first_hour.py checks it). In ORDER's order.
COLOURS = ["#307de8", "#c16515", "#109326", "#e93a48", "#ab51ec", "#0f8a8a", "#e619b2",
           "#81810e", "#7a7a7a", "#9a6a2f"]
BACKGROUNDS = {"light": "#ffffff", "dark": "#1e1e1e"}


# The validation figures (core/validation.py), in the same colour scheme: a figure and
# its untranslated baseline ("_input", dashed) share a colour.
NOT_PLOTTED = {"score"}  # the best checkpoint's ranking figure repeats another one
VALIDATION_ORDER = ["psnr_A", "psnr_B", "swd_A", "swd_B", "cycle_A", "cycle_B", "identity_A",
                    "identity_B", "ssim_A", "ssim_B", "change_A", "change_B", "corr_A", "corr_B"]


def read_metrics(path: Path, key: str = "losses") -> dict[str, tuple[list[float], list[float]]]:
    """Every figure under ``key`` in a metrics.jsonl as {name: (iterations, values)}; lines
    without it and lines cut short by a crash are skipped."""
    curves: dict[str, tuple[list[float], list[float]]] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                    it = float(row["iteration"])
                    losses = row[key]
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash
                for name, value in losses.items():
                    if isinstance(value, (int, float)) and name not in NOT_PLOTTED:
                        xs, ys = curves.setdefault(name, ([], []))
                        xs.append(it)
                        ys.append(float(value))
    except OSError:
        pass
    return curves


class Blocks:
    """A growing float array kept as fixed-size blocks: appending never copies what is
    already there (doubling a 4 MB array stalled the UI thread for tens of ms)."""

    SHIFT = 16
    SIZE = 1 << SHIFT

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []
        self.n = 0

    def extend(self, values: np.ndarray) -> None:
        """Append values."""
        done = 0
        while done < len(values):
            at = self.n & (self.SIZE - 1)
            if at == 0:
                self.blocks.append(np.empty(self.SIZE))
            take = min(self.SIZE - at, len(values) - done)
            self.blocks[-1][at:at + take] = values[done:done + take]
            done += take
            self.n += take

    def take(self, indices: np.ndarray) -> np.ndarray:
        """The values at sorted ``indices``."""
        out = np.empty(len(indices))
        which = indices >> self.SHIFT
        bounds = np.searchsorted(which, np.arange(len(self.blocks) + 1))
        for b, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            if hi > lo:
                out[lo:hi] = self.blocks[b][indices[lo:hi] & (self.SIZE - 1)]
        return out

    def array(self) -> np.ndarray:
        """Every value, as one array (a copy)."""
        if not self.blocks:
            return np.empty(0)
        return np.concatenate(self.blocks)[: self.n]


class Series:
    """A growing (x, y) series, stored as x and the running sum of y, so a redraw costs
    the same for a million points as for a thousand (see ``display``)."""

    def __init__(self) -> None:
        self._x = Blocks()
        self._c = Blocks()  # _c[i] = the sum of the first i values
        self._c.extend(np.zeros(1))
        self._total = 0.0

    @property
    def n(self) -> int:
        """How many points."""
        return self._x.n

    def extend(self, xs, ys) -> None:
        """Append points."""
        xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        if not len(xs):
            return
        sums = self._total + np.cumsum(ys)
        self._total = float(sums[-1])
        self._x.extend(xs)
        self._c.extend(sums)

    @property
    def x(self) -> np.ndarray:
        return self._x.array()

    @property
    def y(self) -> np.ndarray:
        return np.diff(self._c.array())

    def display(self, window: int, max_points: int) -> tuple[np.ndarray, np.ndarray]:
        """At most ``max_points`` points to draw: the trailing average over ``window``
        points, or over the points each drawn point stands for when that is more (so a
        long run is averaged, not subsampled into noise)."""
        n = self.n
        if n == 0:
            return np.empty(0), np.empty(0)
        if n <= max_points:
            ends = np.arange(1, n + 1)
            span = window
        else:
            ends = np.unique(np.linspace(1, n, max_points).round().astype(np.int64))
            span = max(window, -(-n // max_points))
        starts = np.maximum(ends - span, 0)
        mean = (self._c.take(ends) - self._c.take(starts)) / (ends - starts)
        return self._x.take(ends - 1), mean


class _ReadSignals(QObject):
    read = Signal(int, dict)


class _Read(QRunnable):
    def __init__(self, token: int, path: Path, key: str, signals: _ReadSignals) -> None:
        super().__init__()
        self.token, self.path, self.key, self.signals = token, path, key, signals

    def run(self) -> None:
        self.signals.read.emit(self.token, read_metrics(self.path, self.key))


class LossPlot(QWidget):
    """pyqtgraph curves against iteration, with toggles and smoothing.

    By default the losses (all but the colour loss start visible: its scale would
    flatten the rest); ``key="validation"`` plots the validation figures, where
    only the main figure per direction starts visible (PSNR against the truth if the
    run has it, else the distance to the target domain) beside its dashed baseline.
    """

    loaded = Signal()  # a metrics.jsonl finished loading

    def __init__(self, parent: QWidget | None = None, key: str = "losses",
                 ylabel: str = "loss", smoothing: int = 10) -> None:
        super().__init__(parent)
        self.key = key
        self.order = ORDER if key == "losses" else VALIDATION_ORDER
        self._main = "swd"
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
        self.plot.setLabel("left", ylabel)
        self.plot.showGrid(x=True, y=True, alpha=0.2)

        # The coloured check boxes are the legend (a legend on the plot hid the curves).
        # One row that scrolls sideways: the validation plot has 20-odd figures, whose
        # boxes in a plain row made the window's minimum width 3,000 px.
        boxes = QWidget()
        self.toggle_row = QHBoxLayout(boxes)
        self.toggle_row.setContentsMargins(0, 0, 0, 0)
        self.toggle_row.addWidget(QLabel("Show:"))
        self.toggle_row.addStretch(1)
        self.toggle_area = QScrollArea()
        self.toggle_area.setWidget(boxes)
        self.toggle_area.setWidgetResizable(True)
        self.toggle_area.setFrameShape(QFrame.Shape.NoFrame)
        self.toggle_area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.toggle_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.toggle_area.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.toggle_area.setFixedHeight(QCheckBox("x").sizeHint().height()
                                        + self.toggle_area.horizontalScrollBar().sizeHint().height()
                                        + 2)
        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setRange(1, 200)
        self.smoothing.setValue(smoothing)
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
        layout.addWidget(self.toggle_area)
        layout.addLayout(smoothing_row)

        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw_if_dirty)
        self._timer.start()

    def set_background(self, dark: bool) -> None:
        """Match the plot to the theme."""
        self.plot.setBackground(BACKGROUNDS["dark" if dark else "light"])
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
        self._pool.start(_Read(self._token, Path(metrics), self.key, self._signals))

    def _read(self, token: int, curves: dict) -> None:
        if token != self._token:
            return
        self._choose_main(curves)
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
        self.add_many([(iteration, losses)])

    def add_many(self, steps: list[tuple[float, dict[str, Any]]]) -> None:
        """Logged steps from a batch of progress events: one array append per curve,
        so a worker streaming thousands of events a second stays cheap to plot."""
        batch: dict[str, tuple[list[float], list[float]]] = {}
        for iteration, losses in steps:
            for name, value in losses.items():
                if isinstance(value, (int, float)) and name not in NOT_PLOTTED:
                    xs, ys = batch.setdefault(name, ([], []))
                    xs.append(float(iteration))
                    ys.append(float(value))
        self._choose_main(batch)
        for name, (xs, ys) in batch.items():
            self._ensure(name)
            self.series[name].extend(xs, ys)
        if batch:
            self._dirty = True

    def points(self) -> int:
        """How many points the plot holds, over all curves."""
        return sum(s.n for s in self.series.values())

    def _ensure(self, name: str) -> None:
        if name in self.curves:
            return
        self.series[name] = Series()
        base = name.removesuffix("_input")
        known = self.order.index(base) if base in self.order else len(self.order) + len(
            self.curves)
        colour = COLOURS[known % len(COLOURS)]
        style = Qt.PenStyle.DashLine if name != base else Qt.PenStyle.SolidLine
        # Validation passes are sparse (every --val-every iterations): mark each point,
        # so the first one shows before there is a line to draw.
        marks = ({"symbol": "o", "symbolSize": 5, "symbolBrush": colour, "symbolPen": colour}
                 if self.key == "validation" else {})
        curve = self.plot.plot([], [], pen=pg.mkPen(colour, width=1, style=style), name=name,
                               **marks)
        self.curves[name] = curve
        box = QCheckBox(name.replace("_input", " untranslated"))
        visible = self._starts_visible(name)
        box.setChecked(visible)
        curve.setVisible(visible)
        box.setStyleSheet(f"QCheckBox {{ color: {colour}; }}")
        box.toggled.connect(lambda on, c=curve: c.setVisible(on))
        self.toggles[name] = box
        self.toggle_row.insertWidget(len(self.toggles), box)

    def _starts_visible(self, name: str) -> bool:
        if self.key == "losses":
            # The colour loss is λ colour (30 in fast) times a distance: it runs 10–50×
            # the others and would flatten them against the axis. Its toggle shows it.
            return name not in HIDDEN_LOSSES
        return name.split("_")[0] == self._main

    def _choose_main(self, names: Any) -> None:
        """The validation figure shown first: PSNR where the run has truth, else distance."""
        if not self.series:
            self._main = "psnr" if any(str(n).startswith("psnr") for n in names) else "swd"

    def _smoothing_changed(self, value: int) -> None:
        self.smoothing_label.setText(f"Smoothing: {value}" if value > 1 else "Smoothing: off")
        self._dirty = True

    def _redraw_if_dirty(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        window = self.smoothing.value()
        for name, curve in self.curves.items():
            xs, ys = self.series[name].display(window, MAX_DRAWN)
            curve.setData(xs, ys, skipFiniteCheck=True)
