"""The Plugins page: every architecture plugin, where it came from, and why a broken one broke.

The page never imports a plugin: it shows what the `plugins list --json` worker
reported (through the Registry), and enabling, disabling or reloading asks a worker
again. A plugin turned off here stays off for the app and for every job.
"""

from __future__ import annotations

from html import escape as _escape
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QBrush, QColor, QDesktopServices, QFontDatabase
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cyclestudio.gui.registry import Registry
from cyclestudio.paths import user_plugin_dir

COLUMNS = ("On", "Plugin", "Kind", "Source", "Version", "Status", "Provides")
STATUS, PROVIDES = 5, 6
ORIGINS = {"built-in": "built-in", "package": "installed package", "file": "user file"}
ID_ROLE = Qt.ItemDataRole.UserRole


class PluginsPage(QWidget):
    """A table of plugins (tick to enable), their details, and the plugin folder."""

    def __init__(self, registry: Registry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self.busy = False

        self.table = QTreeWidget()
        self.table.setHeaderLabels(list(COLUMNS))
        self.table.setRootIsDecorated(False)
        self.table.setUniformRowHeights(True)
        self.table.setAlternatingRowColors(True)
        header = self.table.header()
        for i in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemChanged.connect(self._ticked)
        self.table.currentItemChanged.connect(lambda *_: self._show_details())

        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.traceback = QPlainTextEdit()
        self.traceback.setReadOnly(True)
        self.traceback.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.traceback.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.traceback.setVisible(False)
        below = QWidget()
        below_layout = QVBoxLayout(below)
        below_layout.setContentsMargins(0, 8, 0, 0)
        below_layout.addWidget(self.details)
        below_layout.addWidget(self.traceback, 1)
        below_layout.addStretch(0)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(below)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([280, 420])

        self.reload_button = QPushButton("Reload")
        self.reload_button.setToolTip("Look for plugins again: a new or edited plugin file "
                                      "shows up without restarting the app")
        self.reload_button.clicked.connect(self.reload)
        self.folder_button = QPushButton("Open plugin folder")
        self.folder_button.setToolTip("Put .py plugin files here")
        self.folder_button.clicked.connect(self.open_folder)
        self.status = QLabel()
        self.status.setStyleSheet("color: gray")
        buttons = QHBoxLayout()
        buttons.addWidget(self.reload_button)
        buttons.addWidget(self.folder_button)
        buttons.addWidget(self.status, 1)

        self.folder_label = QLabel()
        self.folder_label.setWordWrap(True)
        self.folder_label.setStyleSheet("color: gray")
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Plugins</h2>"))
        intro = QLabel(
            "Generators and discriminators come from plugins: the built-ins, installed "
            "packages and .py files in your plugin folder. Untick a plugin to stop loading "
            "it (the app and every job follow). Write your own with "
            "<code>cyclestudio plugins new NAME</code> and check it with "
            "<code>cyclestudio plugins check FILE</code>; docs/writing-plugins.md has the "
            "rest.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addLayout(buttons)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.folder_label)

        registry.plugins_changed.connect(self._plugins_changed)
        registry.plugins_requested.connect(lambda: self._set_busy(True))
        registry.failed.connect(self._failed)
        self._plugins_changed()

    # -- data ------------------------------------------------------------------
    def plugins(self) -> list[dict[str, Any]]:
        """The plugins as the worker last reported them."""
        return self.registry.plugin_list()

    def folder(self) -> str:
        """The user plugin folder (as the worker reports it; the same function finds it)."""
        return str((self.registry.plugins or {}).get("user_plugin_folder")
                   or user_plugin_dir())

    def _plugins_changed(self) -> None:
        self._set_busy(False)
        current = self._current_id()
        self.table.blockSignals(True)
        self.table.clear()
        for plugin in self.plugins():
            self.table.addTopLevelItem(self._item(plugin))
        self.table.blockSignals(False)
        rows = [self.table.topLevelItem(i) for i in range(self.table.topLevelItemCount())]
        chosen = next((r for r in rows if r.data(0, ID_ROLE) == current), None)
        broken = [p for p in self.plugins() if p.get("status") == "error"]
        if chosen is None and rows:
            first_broken = next((r for r, p in zip(rows, self.plugins(), strict=True)
                                 if p.get("status") == "error"), None)
            chosen = first_broken or rows[0]
        if chosen is not None:
            self.table.setCurrentItem(chosen)
        self._show_details()
        self.folder_label.setText(f"Your plugin folder: {self.folder()}")
        if self.registry.plugins is None:
            self.status.setText("Looking for plugins…")
        elif "plugins" not in self.registry.plugins:
            self.status.setText("Press Reload to list the plugins.")
        else:
            count = len(self.plugins())
            self.status.setText(f"{count} plugins" + (
                f"; {len(broken)} failed to load" if broken else ""))

    def _item(self, plugin: dict[str, Any]) -> QTreeWidgetItem:
        status = plugin.get("status", "")
        kinds = ", ".join(plugin.get("kinds") or []) or "—"
        origin = ORIGINS.get(plugin.get("origin", ""), plugin.get("origin", ""))
        if plugin.get("origin") == "package" and plugin.get("distribution"):
            origin += f" ({plugin['distribution']})"
        provides = ", ".join(plugin.get("generators", []) + plugin.get("discriminators", []))
        if status == "error":
            provides = plugin.get("error", "")
        item = QTreeWidgetItem(["", plugin.get("name", ""), kinds, origin,
                                plugin.get("version") or "—", status, provides])
        item.setData(0, ID_ROLE, plugin.get("id"))
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(0, Qt.CheckState.Unchecked if status == "disabled"
                           else Qt.CheckState.Checked)
        item.setToolTip(0, "Load this plugin (untick to turn it off)")
        item.setToolTip(1, plugin.get("source", ""))
        if status == "error":
            for column in (STATUS, PROVIDES):
                item.setForeground(column, QBrush(QColor("#d04040")))
                item.setToolTip(column, plugin.get("error", ""))
        elif status == "disabled":
            for column in range(1, len(COLUMNS)):
                item.setForeground(column, QBrush(QColor("gray")))
        return item

    def _current_id(self) -> str | None:
        item = self.table.currentItem()
        return item.data(0, ID_ROLE) if item is not None else None

    def _show_details(self) -> None:
        plugin = next((p for p in self.plugins() if p.get("id") == self._current_id()), None)
        if plugin is None:
            self.details.setText("")
            self.traceback.setVisible(False)
            return
        specs = {(kind, s["name"]): s for kind in ("generators", "discriminators")
                 for s in (self.registry.plugins or {}).get(kind, [])}
        lines = [f"<b>{_escape(plugin.get('name', ''))}</b>"
                 f" — {_escape(ORIGINS.get(plugin.get('origin', ''), ''))}"
                 + (f", version {_escape(plugin['version'])}" if plugin.get("version") else ""),
                 f"<span style='color: gray'>{_escape(plugin.get('source', ''))}</span>"]
        for kind in ("generators", "discriminators"):
            for name in plugin.get(kind, []):
                spec = specs.get((kind, name), {})
                lines.append(f"{kind[:-1].capitalize()} <b>{_escape(name)}</b>: "
                             f"{_escape(spec.get('title', ''))}. "
                             f"{_escape(spec.get('description', ''))}")
        status = plugin.get("status")
        if status == "disabled":
            lines.append("Turned off: not loaded by the app or by jobs. Tick it to load it "
                         "again.")
        if status == "error":
            lines.append(f"<span style='color: #d04040'><b>Failed to load:</b> "
                         f"{_escape(plugin.get('error', ''))}</span>")
            if len(plugin.get("errors", [])) > 1:
                lines += [f"<span style='color: #d04040'>{_escape(e.get('message', ''))}</span>"
                          for e in plugin["errors"][1:]]
        self.details.setText("<br>".join(lines))
        trace = plugin.get("traceback", "")
        self.traceback.setPlainText(trace)
        self.traceback.setVisible(bool(trace))

    # -- actions ---------------------------------------------------------------
    def reload(self) -> None:
        """Ask the worker for the plugins again."""
        self.registry.reload_plugins()

    def set_enabled(self, plugin_id: str, enabled: bool) -> None:
        """Turn a plugin on or off (remembered), then show the new list."""
        self.registry.set_plugin_enabled(plugin_id, enabled)

    def open_folder(self) -> None:
        """Open the user plugin folder in the file manager (made first if missing)."""
        folder = Path(self.folder())
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def _ticked(self, item: QTreeWidgetItem, column: int) -> None:
        if column != 0 or self.busy:
            return
        self.set_enabled(item.data(0, ID_ROLE), item.checkState(0) == Qt.CheckState.Checked)

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.reload_button.setEnabled(not busy)
        self.table.setEnabled(not busy)
        if busy:
            self.status.setText("Looking for plugins…")

    def _failed(self, message: str) -> None:
        if self.busy and "plugin" in message:  # not the device query
            self._set_busy(False)
            self.status.setText(message.splitlines()[0] if message else "the query failed")

