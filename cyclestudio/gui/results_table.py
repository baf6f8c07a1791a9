"""The per-file results of a conversion or a watch: status, file, and output or reason;
right-click a row to show its file in the file manager."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QUrl,
)
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

STATUS_COLOURS = {"translated": "#2e9d4f", "skipped": "#c08a00", "failed": "#d33"}


@dataclass
class Result:
    """One input's outcome, from a `file` event."""

    input: str
    output: str | None
    status: str
    reason: str | None
    code: str | None = None
    moved_to: str | None = None  # where a watched folder moved a failed file

    def location(self) -> str:
        """The file to show in the file manager: the output, a moved input, or the input."""
        if self.status == "translated" and self.output:
            return self.output
        return self.moved_to or self.input


# The worker's reasons name its command-line flags; the app names its own controls.
APP_REASONS = {
    "output_exists": "output exists (tick “replace outputs that already exist” to replace it)",
}


class ResultsModel(QAbstractTableModel):
    """Per-file results (status, file, output or reason); rows arrive in batches."""

    HEADERS = ("Status", "File", "Result")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.results: list[Result] = []

    def clear(self) -> None:
        """No results."""
        self.beginResetModel()
        self.results = []
        self.endResetModel()

    def extend(self, results: list[Result]) -> None:
        """Append results."""
        if results:
            first = len(self.results)
            self.beginInsertRows(QModelIndex(), first, first + len(results) - 1)
            self.results.extend(results)
            self.endInsertRows()

    def counts(self) -> dict[str, int]:
        """How many inputs were translated, skipped and failed."""
        out = {"translated": 0, "skipped": 0, "failed": 0}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.results)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt API
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        if not index.isValid():
            return None
        r = self.results[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return r.status
            if column == 1:
                return Path(r.input).name
            if r.status == "translated":
                name = Path(r.output).name if r.output else ""
                return f"{name} ({r.reason})" if r.reason else name
            if r.moved_to:
                return f"{r.reason or ''} (moved to {Path(r.moved_to).parent.name}/)"
            return r.reason or ""
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [r.input]
            if r.output:
                lines.append(f"→ {r.output}")
            if r.reason:
                lines.append(r.reason)
            if r.moved_to:
                lines.append(f"moved to {r.moved_to}")
            return "\n".join(lines)
        if role == Qt.ItemDataRole.ForegroundRole and column == 0:
            return QBrush(QColor(STATUS_COLOURS.get(r.status, "#888")))
        return None


def result_from_event(e: dict[str, Any]) -> Result:
    """A ``file`` event as a row, its reason in the app's own words where it has them."""
    code = e.get("code")
    return Result(str(e.get("input", "")), e.get("output"), str(e.get("status", "failed")),
                  APP_REASONS.get(str(code), e.get("reason")), code, e.get("moved_to"))


class ResultsTable(QTableView):
    """The results as a table whose status column always fits its words."""

    def __init__(self, model: ResultsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(22)
        header = self.horizontalHeader()
        # Wide enough for the longest status whatever rows are in view ("tran…" was cut).
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        metrics = self.fontMetrics()
        self.setColumnWidth(0, max(metrics.horizontalAdvance(s) for s in (
            *STATUS_COLOURS, ResultsModel.HEADERS[0])) + 3 * metrics.averageCharWidth())
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.setColumnWidth(1, 220)
        self.setWordWrap(False)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)

    def selected(self) -> Result | None:
        """The result of the current row, or None."""
        index = self.currentIndex()
        model = self.model()
        if not index.isValid() or not isinstance(model, ResultsModel):
            return None
        return model.results[index.row()] if index.row() < len(model.results) else None

    def _menu(self, pos) -> None:
        from PySide6.QtGui import QDesktopServices, QGuiApplication
        from PySide6.QtWidgets import QMenu

        from cyclestudio.gui.file_manager import show_in_folder

        index = self.indexAt(pos)
        model = self.model()
        if not index.isValid() or not isinstance(model, ResultsModel):
            return
        r = model.results[index.row()]
        menu = QMenu(self)
        menu.addAction("Show in folder", lambda: show_in_folder(Path(r.location())))
        if r.location() != r.input:
            menu.addAction("Show the input in its folder",
                           lambda: show_in_folder(Path(r.input)))
        menu.addAction("Open", lambda: QDesktopServices.openUrl(
            QUrl.fromLocalFile(r.location())))
        menu.addAction("Copy path", lambda: QGuiApplication.clipboard().setText(r.location()))
        menu.exec(self.viewport().mapToGlobal(pos))
