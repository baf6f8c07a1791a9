"""`cyclestudio` with no arguments: open the main window."""

from __future__ import annotations

import signal
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
    _close_on_signals(window)
    return app.exec()


def _close_on_signals(window: MainWindow) -> None:
    """Ctrl-C in the terminal (or SIGTERM) closes the window as Quit does.

    Closing stops a running job with a checkpoint first. Workers run in their own
    sessions, so the signal reaches only the app, which stops them in order.
    """

    def close(_signum: int, _frame: object) -> None:
        QTimer.singleShot(0, window.close)

    signal.signal(signal.SIGINT, close)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, close)
    # Python runs signal handlers only between bytecodes; Qt's event loop is C++, so
    # a timer gives the interpreter a moment to notice a signal.
    timer = QTimer(window)
    timer.timeout.connect(lambda: None)
    timer.start(250)
