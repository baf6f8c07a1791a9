"""`cyclestudio` with no arguments: open the main window."""

from __future__ import annotations

import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from cyclestudio.gui.main_window import MainWindow
from cyclestudio.gui.settings import Settings
from cyclestudio.gui.theme import apply_theme


def main() -> int:
    """Run the app until its window closes; returns the exit code."""
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("cyclestudio")
    app.setOrganizationName("cyclestudio")
    app.setStyle("Fusion")
    settings = Settings.load()
    apply_theme(app, settings.theme)
    window = MainWindow(settings)
    window.show()
    QTimer.singleShot(0, window.first_launch)
    return app.exec()
