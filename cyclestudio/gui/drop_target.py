"""Taking images and folders from a file manager: drag and drop, or the file dialogs.

The Datasets and Convert pages both accept dropped files and folders; this is the one
place that knows how, and which files the dialogs offer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp *.gif *.ppm *.pgm *.tga)"


class PathDrops(QObject):
    """Makes a widget accept dropped local files and folders and hand them to ``on_paths``.

    ``enabled`` is asked at each drag: a widget that cannot take files now refuses them.
    """

    def __init__(self, widget: QWidget, on_paths: Callable[[list[Path]], None],
                 enabled: Callable[[], bool] = lambda: True) -> None:
        super().__init__(widget)
        self.on_paths, self.enabled = on_paths, enabled
        widget.setAcceptDrops(True)
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if event.mimeData().hasUrls() and self.enabled():  # type: ignore[attr-defined]
                event.acceptProposedAction()  # type: ignore[attr-defined]
                return True
            return False
        if kind == QEvent.Type.Drop:
            assert isinstance(event, QDropEvent)
            paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
            if paths and self.enabled():
                event.acceptProposedAction()
                self.on_paths(paths)
                return True
        return False


def pick_images(parent: QWidget, title: str) -> list[Path]:
    """Image files chosen in the file dialog (none if cancelled)."""
    files, _ = QFileDialog.getOpenFileNames(parent, title, "", IMAGE_FILTER)
    return [Path(f) for f in files]


def pick_folder(parent: QWidget, title: str, start: str = "") -> Path | None:
    """A folder chosen in the file dialog (None if cancelled)."""
    folder = QFileDialog.getExistingDirectory(parent, title, start)
    return Path(folder) if folder else None


class DropArea(QFrame):
    """A large dashed target for images and folders, with Add images… and Add folder…."""

    dropped = Signal(list)

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("drop")
        self.setStyleSheet("#drop { border: 2px dashed palette(mid); border-radius: 6px; }")
        self.label = QLabel(text)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setWordWrap(True)
        self.add_files = QPushButton("Add images…")
        self.add_folder = QPushButton("Add folder…")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.add_files)
        buttons.addWidget(self.add_folder)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.label)
        layout.addLayout(buttons)
        layout.addStretch(1)
        self.setMinimumHeight(110)
        self.drops = PathDrops(self, self.dropped.emit, self.isEnabled)
