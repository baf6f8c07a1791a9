"""The sample preview: the latest grid, and a slider back through the earlier ones."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap, QResizeEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QSlider, QVBoxLayout, QWidget

_ITERATION = re.compile(r"(\d+)")


def iteration_of(path: Path) -> int:
    """The iteration a sample file was made at (its name is the zero-padded number)."""
    match = _ITERATION.search(Path(path).stem)
    return int(match.group(1)) if match else 0


class SamplePreview(QWidget):
    """Sample grids of a run: real A, A→B, A→B→A, real B, B→A, B→A→B side by side."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.paths: list[Path] = []
        self._pixmap: QPixmap | None = None
        self._shown: Path | None = None
        self.image = QLabel("Samples appear here while training.")
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.image.setMinimumSize(160, 160)
        self.caption = QLabel()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.setToolTip("Earlier samples: watch the translator learn")
        self.slider.valueChanged.connect(self._show)
        legend = QLabel("columns: A · A→B · A→B→A (back) · B · B→A · B→A→B (back)")
        legend.setStyleSheet("color: gray")
        row = QHBoxLayout()
        row.addWidget(self.caption)
        row.addWidget(self.slider, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.image, 1)
        layout.addLayout(row)
        layout.addWidget(legend)

    def clear(self) -> None:
        """No run shown."""
        self.paths = []
        self._pixmap = None
        self._shown = None
        self.image.clear()
        self.image.setText("Samples appear here while training.")
        self.caption.clear()
        self.slider.setEnabled(False)

    def load(self, run: Path) -> None:
        """Show the samples a run folder already has (the latest first)."""
        self.clear()
        folder = Path(run) / "samples"
        files = sorted(folder.glob("*.png"), key=iteration_of) if folder.is_dir() else []
        for f in files:
            self.add(f)

    def add(self, path: Path) -> None:
        """A new sample; the view follows it unless the user looks at an older one."""
        path = Path(path)
        if path in self.paths:
            return
        following = not self.paths or self.slider.value() == len(self.paths) - 1
        self.paths.append(path)
        self.slider.blockSignals(True)
        self.slider.setRange(0, len(self.paths) - 1)
        self.slider.blockSignals(False)
        self.slider.setEnabled(len(self.paths) > 1)
        if following:
            self.slider.setValue(len(self.paths) - 1)
            self._show(len(self.paths) - 1)
        else:
            self._caption(self.slider.value())

    def shown(self) -> Path | None:
        """The sample on screen."""
        return self._shown

    def _caption(self, i: int) -> None:
        self.caption.setText(
            f"iteration {iteration_of(self.paths[i]):,}  ({i + 1}/{len(self.paths)})")

    def _show(self, i: int) -> None:
        if not 0 <= i < len(self.paths):
            return
        pixmap = QPixmap(str(self.paths[i]))
        if pixmap.isNull():
            return  # still being written; the next event shows a later one
        self._pixmap = pixmap
        self._shown = self.paths[i]
        self._caption(i)
        self._fit()

    def _fit(self) -> None:
        if self._pixmap is None:
            return
        size = self.image.size()
        scaled = self._pixmap.scaled(
            size, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation
            if self._pixmap.width() > size.width() else Qt.TransformationMode.FastTransformation)
        self.image.setPixmap(scaled)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._fit()
