"""A domain's images for the Datasets page: listed and checked off the UI thread, in a
list model the thumbnail grid shows (size, or why a file cannot be read)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRunnable,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QPixmap

from cyclestudio.core.imagescan import why_unreadable
from cyclestudio.gui.thumbnails import SIZE, ThumbnailCache
from cyclestudio.project import Domain, Project

BATCH_SECONDS = 0.1


@dataclass
class Entry:
    """One image of a domain; ``size`` and ``reason`` are filled in by the check."""

    path: str
    size: tuple[int, int] | None = None
    reason: str | None = None
    checked: bool = False


def check_image(path: str) -> tuple[tuple[int, int] | None, str | None]:
    """The pixel size of an image, or why it cannot be read."""
    reason = why_unreadable(Path(path))
    if reason:
        return None, reason
    try:
        with Image.open(path) as im:
            return im.size, None
    except Exception as exc:  # noqa: BLE001 - reported to the user as the reason
        return None, str(exc)


class ScanSignals(QObject):
    listed = Signal(int, list)
    checked = Signal(int, list)
    done = Signal(int)


class Scan(QRunnable):
    """List a domain's files, then check each (decode, size) and report in batches."""

    def __init__(self, token: int, project: Project, domain: Domain, signals: ScanSignals):
        super().__init__()
        self.token, self.project, self.domain, self.signals = token, project, domain, signals
        self.cancelled = False

    def run(self) -> None:
        paths = [str(p) for p in self.project.image_files(self.domain)]
        self.signals.listed.emit(self.token, paths)
        batch: list[tuple[str, Any, Any]] = []
        last = time.monotonic()
        for path in paths:
            if self.cancelled:
                return
            size, reason = check_image(path)
            batch.append((path, size, reason))
            if time.monotonic() - last > BATCH_SECONDS:
                self.signals.checked.emit(self.token, batch)
                batch, last = [], time.monotonic()
        if batch:
            self.signals.checked.emit(self.token, batch)
        self.signals.done.emit(self.token)


class DatasetModel(QAbstractListModel):
    """The images of one domain for a QListView in icon mode (no widget per image)."""

    def __init__(self, thumbnails: ThumbnailCache, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.entries: list[Entry] = []
        self.rows: dict[str, int] = {}
        self.thumbnails = thumbnails
        thumbnails.ready.connect(self._thumbnail_ready)
        self._placeholder = QPixmap(SIZE, SIZE)
        self._placeholder.fill(QColor(128, 128, 128, 40))
        self._broken = QPixmap(SIZE, SIZE)
        self._broken.fill(QColor(200, 40, 40, 90))

    def set_paths(self, paths: list[str]) -> None:
        """Replace the images."""
        self.beginResetModel()
        self.entries = [Entry(p) for p in paths]
        self.rows = {p: i for i, p in enumerate(paths)}
        self.endResetModel()

    def update(self, results: list[tuple[str, Any, Any]]) -> None:
        """Record check results (size or reason) for some images."""
        rows = []
        for path, size, reason in results:
            row = self.rows.get(path)
            if row is None:
                continue
            entry = self.entries[row]
            entry.size, entry.reason, entry.checked = size, reason, True
            rows.append(row)
        if rows:
            self.dataChanged.emit(self.index(min(rows)), self.index(max(rows)))

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.entries)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        if not index.isValid():
            return None
        entry = self.entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return os.path.basename(entry.path)
        if role == Qt.ItemDataRole.DecorationRole:
            if entry.reason:
                return self._broken
            pixmap = self.thumbnails.get(entry.path)
            return pixmap if pixmap is not None else self._placeholder
        if role == Qt.ItemDataRole.ToolTipRole:
            if entry.reason:
                return f"{entry.path}\nUnreadable: {entry.reason}"
            if entry.size:
                return f"{entry.path}\n{entry.size[0]}×{entry.size[1]}"
            return entry.path
        if role == Qt.ItemDataRole.ForegroundRole and entry.reason:
            return QBrush(QColor(220, 50, 50))
        if role == Qt.ItemDataRole.UserRole:
            return entry.path
        return None

    def _thumbnail_ready(self, path: str) -> None:
        row = self.rows.get(path)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def summary(self) -> tuple[int, int, list[Entry], tuple[int, int, int, int] | None]:
        """(images, checked, bad entries, (min w, min h, max w, max h) or None)."""
        bad = [e for e in self.entries if e.reason]
        sizes = [e.size for e in self.entries if e.size]
        span = None
        if sizes:
            ws, hs = [s[0] for s in sizes], [s[1] for s in sizes]
            span = (min(ws), min(hs), max(ws), max(hs))
        checked = sum(e.checked for e in self.entries)
        return len(self.entries), checked, bad, span


