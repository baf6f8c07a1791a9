"""A translated image over its input in a split view, decoded off the UI thread.

Any finished file can be shown (the Convert page shows the row the user selects, else
the latest); the divider is dragged to compare, and the view zooms to fit or to 100 %.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from cyclestudio.gui.compare_view import CompareView
from cyclestudio.gui.thumbnails import small_pil, to_qimage

# Images are decoded up to this side for the view: 100 % is real pixels up to it
# (a larger image is shown from a copy of this size, and the caption says so).
MAX_SIDE = 4096


def preview_image(path: str, side: int = MAX_SIDE) -> QImage | None:
    """An upright RGBA copy of an image, at most ``side`` on its longer side; None if
    unreadable."""
    im = small_pil(path, side)
    return None if im is None else to_qimage(im)


def image_size(path: str) -> tuple[int, int] | None:
    """An image's upright (width, height) from its header, or None."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            orientation = im.getexif().get(0x0112, 1)
            w, h = im.size
    except Exception:  # noqa: BLE001 - unreadable: no size
        return None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


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
    """An input and its translation in a split view, with zoom buttons and a caption."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = CompareView()
        self.fit_button = QPushButton("Fit")
        self.fit_button.setCheckable(True)
        self.fit_button.setToolTip("Scale the image to the view")
        self.actual_button = QPushButton("100 %")
        self.actual_button.setCheckable(True)
        self.actual_button.setToolTip("Show the pixels as they are (drag to pan)")
        self.fit_button.clicked.connect(self.view.set_fit)
        self.actual_button.clicked.connect(lambda: self.view.set_zoom(1.0))
        self.zoom_label = QLabel()
        self.zoom_label.setStyleSheet("color: gray")
        self.caption = QLabel()
        self.caption.setStyleSheet("color: gray")
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.caption, 1)
        bar.addWidget(self.zoom_label)
        bar.addWidget(self.fit_button)
        bar.addWidget(self.actual_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addLayout(bar)
        self.view.zoom_changed.connect(self._zoom_shown)
        self.paths: tuple[str, str] | None = None  # the pair on screen
        self.requested: tuple[str, str] | None = None
        self.loader = PreviewLoader(self)
        self.loader.loaded.connect(self._loaded)
        self.clear()

    def clear(self, text: str = "Translated images appear here: drag across one to "
              "compare it with its input. Select a file in the list to see it.") -> None:
        """Nothing shown; ``text`` says what will be."""
        self.paths = self.requested = None
        self.view.clear(text)
        self.caption.setText("")
        self._zoom_shown(1.0)

    def request(self, before: str, after: str) -> None:
        """Show this input and its translation once they are decoded."""
        self.requested = (before, after)
        self.loader.request(before, after)

    def _loaded(self, before_path: str, after_path: str, before: QImage | None,
                after: QImage | None) -> None:
        if (before_path, after_path) != self.requested:
            return  # a newer request is on its way
        if before is None or after is None:
            missing = before_path if before is None else after_path
            self.paths = None
            self.view.clear(f"{Path(missing).name} cannot be shown (moved, deleted or "
                            "unreadable).")
            self.caption.setText("")
            return
        self.paths = (before_path, after_path)
        self.view.set_images(before, after)
        caption = f"{Path(before_path).name} → {Path(after_path).name}"
        size = image_size(before_path)
        if size and max(size) > max(before.width(), before.height()):
            caption += f" (shown from a {before.width()}×{before.height()} copy of {size[0]}×" \
                       f"{size[1]})"
        self.caption.setText(caption)

    def _zoom_shown(self, scale: float) -> None:
        fit = self.view.fit
        self.fit_button.setChecked(fit)
        self.actual_button.setChecked(not fit and abs(scale - 1.0) < 1e-6)
        self.zoom_label.setText(f"{scale * 100:.0f} %" if self.view.before is not None else "")

    def shown(self) -> tuple[str, str] | None:
        """The (before, after) file names on screen; None before the first translation."""
        if self.paths is None:
            return None
        return f"before: {Path(self.paths[0]).name}", f"after: {Path(self.paths[1]).name}"
