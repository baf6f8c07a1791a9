"""A watched folder that outlives the app: remembered in the settings while it runs,
offered again at the next start (the Convert page's banner)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from cyclestudio.gui.settings import Settings


class ResumeWatchBanner(QFrame):
    """"When cyclestudio closed it was watching …": Resume watching, or Forget it.

    ``resume`` fires with the remembered watch (model, folder, out, direction, format,
    quality, overwrite) when the user asks for it again."""

    resume = Signal(dict)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.button = QPushButton("Resume watching")
        self.button.clicked.connect(self.request)
        forget = QPushButton("Forget it")
        forget.clicked.connect(self.forget)
        layout = QHBoxLayout(self)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.button)
        layout.addWidget(forget)
        self.hide()

    def remember(self, watch: dict[str, Any]) -> None:
        """A watch has started: offer it again if the app closes while it runs."""
        self.settings.watch = dict(watch)
        self._save()

    def forget(self) -> None:
        """Do not offer the remembered watch again."""
        self.hide()
        if self.settings.watch:
            self.settings.watch = {}
            self._save()

    def offer(self) -> None:
        """Show the remembered watch, if any, saying if it can no longer resume."""
        w = self.settings.watch
        if not w:
            return
        folder, model = Path(str(w.get("folder", ""))), Path(str(w.get("model", "")))
        problem = ("the folder is gone" if not folder.is_dir() else
                   "the model is gone" if not model.exists() else "")
        self.text.setText(
            f"When cyclestudio closed it was watching <b>{folder}</b> (translations into "
            f"{w.get('out', '?')})." + (f" It cannot resume: {problem}." if problem else ""))
        self.button.setEnabled(not problem)
        self.show()

    def request(self) -> None:
        """Ask the page to watch the remembered folder again."""
        if self.settings.watch:
            self.hide()
            self.resume.emit(dict(self.settings.watch))

    def _save(self) -> None:
        try:
            self.settings.save()
        except OSError:
            pass  # remembered for this session only
