"""The last translated image next to its input, decoded off the UI thread."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from cyclestudio.gui.thumbnails import small_pil, to_qimage

PREVIEW_SIDE = 360


def preview_image(path: str, side: int = PREVIEW_SIDE) -> QImage | None:
    """A small upright RGBA copy of an image for the before/after view; None if unreadable."""
    im = small_pil(path, side)
    return None if im is None else to_qimage(im)


class _PreviewSignals(QObject):
    loaded = Signal(object)  # (before path, after path, before QImage|None, after QImage|None)


class _PreviewJob(QRunnable):
    def __init__(self, before: str, after: str, signals: _PreviewSignals) -> None:
        super().__init__()
        self.before, self.after, self.signals = before, after, signals

    def run(self) -> None:
        self.signals.loaded.emit((self.before, self.after, preview_image(self.before),
                                  preview_image(self.after)))


class _PreviewSignals(QObject):
    loaded = Signal(object)  # (before path, after path, before QImage|None, after QImage|None)


class _PreviewJob(QRunnable):
    def __init__(self, before: str, after: str, signals: _PreviewSignals) -> None:
        super().__init__()
        self.before, self.after, self.signals = before, after, signals

    def run(self) -> None:
        self.signals.loaded.emit((self.before, self.after, preview_image(self.before),
                                  preview_image(self.after)))


class PreviewLoader(QObject):
    """Decodes one (before, after) pair at a time in the background; while one is being
    decoded only the newest request waits (older ones are not worth showing)."""

    loaded = Signal(str, str, object, object)  # before path, after path, QImages or None

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._busy = False
        self._next: tuple[str, str] | None = None
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _PreviewSignals(self)
        self._signals.loaded.connect(self._done)

    def request(self, before: str, after: str) -> None:
        """Decode this pair soon."""
        if self._busy:
            self._next = (before, after)
            return
        self._busy = True
        self._pool.start(_PreviewJob(before, after, self._signals))

    def wait(self, msecs: int = 3000) -> None:
        """Let a decode in hand finish (closing)."""
        self._pool.waitForDone(msecs)

    def _done(self, result: tuple[str, str, QImage | None, QImage | None]) -> None:
        self._busy = False
        self.loaded.emit(*result)
        if self._next is not None:
            before, after = self._next
            self._next = None
            self.request(before, after)


class BeforeAfter(QWidget):
    """The last translated image next to its input."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.before = self._image_label()
        self.after = self._image_label()
        self.before_caption = QLabel("before")
        self.after_caption = QLabel("after")
        grid = QHBoxLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        for image, caption in ((self.before, self.before_caption),
                               (self.after, self.after_caption)):
            column = QVBoxLayout()
            column.addWidget(image, 1)
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption.setStyleSheet("color: gray")
            column.addWidget(caption)
            grid.addLayout(column, 1)
        self.pixmaps: tuple[QPixmap, QPixmap] | None = None
        self.loader = PreviewLoader(self)
        self.loader.loaded.connect(self._loaded)
        self.clear()

    @staticmethod
    def _image_label() -> QLabel:
        label = QLabel()
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        label.setMinimumSize(120, 120)
        return label

    def clear(self) -> None:
        """Nothing translated yet."""
        self.pixmaps = None
        self.before.clear()
        self.after.clear()
        self.before.setText("The last translated image appears here,")
        self.after.setText("next to its input.")
        self.before_caption.setText("before")
        self.after_caption.setText("after")

    def show_pair(self, before: QImage, after: QImage, before_name: str, after_name: str):
        """Show an input and its translation."""
        self.pixmaps = (QPixmap.fromImage(before), QPixmap.fromImage(after))
        self.before_caption.setText(f"before: {before_name}")
        self.after_caption.setText(f"after: {after_name}")
        self._fit()

    def _fit(self) -> None:
        if self.pixmaps is None:
            return
        for label, pixmap in zip((self.before, self.after), self.pixmaps, strict=True):
            size = label.size()
            mode = (Qt.TransformationMode.SmoothTransformation
                    if pixmap.width() > size.width() or pixmap.height() > size.height()
                    else Qt.TransformationMode.FastTransformation)
            label.setPixmap(pixmap.scaled(size, Qt.AspectRatioMode.KeepAspectRatio, mode))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._fit()

    def request(self, before: str, after: str) -> None:
        """Show this input and its translation once they are decoded."""
        self.loader.request(before, after)

    def _loaded(self, before_path: str, after_path: str, before: QImage | None,
                after: QImage | None) -> None:
        if before is not None and after is not None:
            self.show_pair(before, after, Path(before_path).name, Path(after_path).name)

    def shown(self) -> tuple[str, str] | None:
        """The (before, after) captions on screen; None before the first translation."""
        if self.pixmaps is None:
            return None
        return self.before_caption.text(), self.after_caption.text()

