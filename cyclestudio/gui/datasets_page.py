"""The Datasets page: each domain's images as a thumbnail grid, with counts, sizes and bad files.

A domain is a list of sources (folders or single images) in project.json. Dropping
files or folders on a domain adds sources; removing an image that lives in a folder
source records it in the domain's ``exclude`` list (nothing is deleted on disk).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import (
    QSize,
    Qt,
    QThreadPool,
    Signal,
)
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

from cyclestudio.core.imagescan import is_image_name
from cyclestudio.gui.dataset_model import DatasetModel, Scan, ScanSignals
from cyclestudio.gui.drop_target import PathDrops, pick_folder, pick_images
from cyclestudio.gui.thumbnails import SIZE, ThumbnailCache
from cyclestudio.project import Domain, Project


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
        self._scan: Scan | None = None
        self.scanning = False
        self._signals = ScanSignals(self)
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
        self._scan = Scan(self._token, self.project, Domain(
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
