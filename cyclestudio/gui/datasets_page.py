"""The Datasets page: each domain's images as a thumbnail grid, with counts, sizes and bad files.

A domain is a list of sources (folders or single images) in project.json. Dropping
files or folders on a domain adds sources; removing an image that lives in a folder
source records it in the domain's ``exclude`` list (nothing is deleted on disk).
"""

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
    QSize,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cyclestudio.core.imagescan import is_image_name, why_unreadable
from cyclestudio.gui.drop_target import PathDrops, pick_folder, pick_images
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


class _ScanSignals(QObject):
    listed = Signal(int, list)
    checked = Signal(int, list)
    done = Signal(int)


class _Scan(QRunnable):
    """List a domain's files, then check each (decode, size) and report in batches."""

    def __init__(self, token: int, project: Project, domain: Domain, signals: _ScanSignals):
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


class DomainPanel(QWidget):
    """One domain: name, sources, count and size range, thumbnail grid, bad files."""

    changed = Signal()  # the project's domain was edited (and saved)
    scanned = Signal()  # a scan finished checking every image

    def __init__(self, key: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.key = key
        self.project: Project | None = None
        self.drops = PathDrops(self, self.add_paths, lambda: self.project is not None)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._token = 0
        self._scan: _Scan | None = None
        self.scanning = False
        self._signals = _ScanSignals(self)
        self._signals.listed.connect(self._listed)
        self._signals.checked.connect(self._checked)
        self._signals.done.connect(self._done)

        self.title = QLabel(f"<b>Domain {key}</b>")
        self.name_edit = QLineEdit()
        example = {"A": "horses", "B": "zebras"}.get(key, "photos")
        self.name_edit.setPlaceholderText(f"name of domain {key}, e.g. {example}")
        self.name_edit.editingFinished.connect(self._rename)
        self.summary = QLabel("No images yet: drop folders or images here.")
        self.summary.setWordWrap(True)

        self.sources = QListWidget()
        self.sources.setMaximumHeight(64)
        self.sources.setToolTip("Folders and images this domain uses")

        self.thumbnails = ThumbnailCache(self, threads=1)
        self.model = DatasetModel(self.thumbnails, self)
        self.view = QListView()
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setModel(self.model)
        self.view.setIconSize(QSize(SIZE, SIZE))
        self.view.setGridSize(QSize(SIZE + 12, SIZE + 28))
        self.view.setUniformItemSizes(True)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(500)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)

        self.bad = QListWidget()
        self.bad.setMaximumHeight(90)
        self.bad.setToolTip("Files that cannot be read are skipped by training")
        self.bad.hide()

        add_folder = QPushButton("Add folder…")
        add_folder.clicked.connect(self._pick_folder)
        add_files = QPushButton("Add images…")
        add_files.clicked.connect(self._pick_files)
        self.remove_images = QPushButton("Remove selected")
        self.remove_images.setToolTip("Leave the selected images out (files stay on disk)")
        self.remove_images.clicked.connect(self.remove_selected)
        self.remove_source = QPushButton("Remove source")
        self.remove_source.setToolTip("Stop using the selected folder or image")
        self.remove_source.clicked.connect(self._remove_source)

        header = QHBoxLayout()
        header.addWidget(self.title)
        header.addWidget(self.name_edit, 1)
        buttons = QHBoxLayout()
        for b in (add_folder, add_files, self.remove_images, self.remove_source):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.summary)
        layout.addWidget(self.sources)
        layout.addLayout(buttons)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.bad)
        self.setEnabled(False)

    # -- project -----------------------------------------------------------------
    @property
    def domain(self) -> Domain:
        assert self.project is not None
        return self.project.domain(self.key)

    def set_project(self, project: Project | None) -> None:
        """Show ``project``'s domain (None: nothing)."""
        self.project = project
        self.setEnabled(project is not None)
        self.name_edit.setText(self.domain.name if project else "")
        self.rescan()

    def _save(self) -> None:
        assert self.project is not None
        self.project.save()
        self.changed.emit()

    def _rename(self) -> None:
        if self.project and self.name_edit.text().strip() and (
            self.name_edit.text().strip() != self.domain.name
        ):
            self.domain.name = self.name_edit.text().strip()
            self._save()

    # -- adding and removing ---------------------------------------------------------
    def add_paths(self, paths: list[Path]) -> int:
        """Add folders and image files as sources; returns how many were added."""
        if self.project is None:
            return 0
        added = 0
        for path in paths:
            path = Path(path)
            if not (path.is_dir() or (path.is_file() and is_image_name(path))):
                continue
            rel = self.project.relative(path)
            resolved = str(self.project.resolve(rel))
            # Adding an excluded image (or a folder holding some) brings them back.
            self.domain.exclude = [
                e for e in self.domain.exclude
                if not (str(self.project.resolve(e)) == resolved
                        or str(self.project.resolve(e)).startswith(resolved + os.sep))
            ]
            if rel not in self.domain.paths:
                self.domain.paths.append(rel)
                added += 1
        self._save()
        self.rescan()
        return added

    def remove_selected(self) -> None:
        """Leave the selected images out of the domain."""
        if self.project is None:
            return
        paths = [self.model.entries[i.row()].path for i in self.view.selectedIndexes()]
        for path in paths:
            rel = self.project.relative(Path(path))
            if rel in self.domain.paths:
                self.domain.paths.remove(rel)
            elif rel not in self.domain.exclude:
                self.domain.exclude.append(rel)
        if paths:
            self._save()
            self.rescan()

    def _remove_source(self) -> None:
        item = self.sources.currentItem()
        if self.project is None or item is None:
            return
        rel = item.text()
        if rel in self.domain.paths:
            self.domain.paths.remove(rel)
            root = str(self.project.resolve(rel))
            self.domain.exclude = [
                e for e in self.domain.exclude
                if not str(self.project.resolve(e)).startswith(root + os.sep)
            ]
            self._save()
            self.rescan()

    def _pick_folder(self) -> None:
        folder = pick_folder(self, f"Add a folder to domain {self.key}")
        if folder:
            self.add_paths([folder])

    def _pick_files(self) -> None:
        files = pick_images(self, f"Add images to domain {self.key}")
        if files:
            self.add_paths(files)

    # -- scanning ----------------------------------------------------------------
    def rescan(self) -> None:
        """List and check the domain's images again, in the background."""
        self._token += 1
        if self._scan is not None:
            self._scan.cancelled = True
        self.thumbnails.forget()
        self.sources.clear()
        self.bad.clear()
        self.bad.hide()
        if self.project is None:
            self.model.set_paths([])
            self.summary.setText("")
            return
        self.sources.addItems(self.domain.paths)
        self.scanning = True
        self.summary.setText("Scanning…")
        self._scan = _Scan(self._token, self.project, Domain(
            self.domain.name, list(self.domain.paths), list(self.domain.exclude)), self._signals)
        self.pool.start(self._scan)

    def _listed(self, token: int, paths: list[str]) -> None:
        if token == self._token:
            self.model.set_paths(paths)
            self._show_summary()

    def _checked(self, token: int, results: list) -> None:
        if token != self._token:
            return
        self.model.update(results)
        for path, _, reason in results:
            if reason:
                self.bad.addItem(f"{os.path.basename(path)} — {reason}")
                self.bad.item(self.bad.count() - 1).setToolTip(path)
                self.bad.show()
        self._show_summary()

    def _done(self, token: int) -> None:
        if token == self._token:
            self.scanning = False
            self._show_summary()
            self.scanned.emit()

    def _show_summary(self) -> None:
        count, checked, bad, span = self.model.summary()
        if count == 0:
            self.summary.setText(
                "No images yet: drop folders or images here, or use Add folder…")
            return
        good = count - len(bad)
        parts = [f"<b>{good:,}</b> image{'s' if good != 1 else ''}"]
        if bad:
            parts.append(f"<span style='color:#d33'>{len(bad):,} unreadable</span>")
        if span:
            w0, h0, w1, h1 = span
            parts.append(f"{w0}×{h0}" if (w0, h0) == (w1, h1) else f"{w0}×{h0} to {w1}×{h1}")
        if checked < count:
            parts.append(f"checking {checked:,}/{count:,}…")
        self.summary.setText(" · ".join(parts))

    def counts(self) -> tuple[int, int]:
        """(readable images, unreadable files) as currently known."""
        count, _, bad, _ = self.model.summary()
        return count - len(bad), len(bad)

    def stop(self) -> None:
        """Cancel a running scan and wait for it (closing the window)."""
        if self._scan is not None:
            self._scan.cancelled = True
        self.pool.waitForDone(5000)
        self.thumbnails.forget()
        self.thumbnails.wait()


class DatasetsPage(QWidget):
    """Both domains side by side."""

    changed = Signal()
    smallest_side = Signal(int)  # after a scan: the shortest image side over both domains

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.panels = {k: DomainPanel(k) for k in ("A", "B")}
        splitter = QSplitter(Qt.Orientation.Horizontal)
        for panel in self.panels.values():
            splitter.addWidget(panel)
            panel.changed.connect(self.changed)
            panel.scanned.connect(self._scanned)
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Two folders of images, one per domain. They need not be paired: "
            "training learns to turn A into B and B into A.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addWidget(splitter, 1)

    def _scanned(self) -> None:
        spans = [p.model.summary()[3] for p in self.panels.values()]
        sides = [min(s[0], s[1]) for s in spans if s]
        if sides and not any(p.scanning for p in self.panels.values()):
            self.smallest_side.emit(min(sides))

    def set_project(self, project: Project | None) -> None:
        """Show a project's two domains."""
        for panel in self.panels.values():
            panel.set_project(project)

    def stop(self) -> None:
        """Stop background work (closing the window)."""
        for panel in self.panels.values():
            panel.stop()
