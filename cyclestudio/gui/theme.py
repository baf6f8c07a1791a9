"""Light, dark, or follow the system: Qt's colour scheme on the Fusion style."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication


def apply_theme(app: QApplication, theme: str) -> bool:
    """Apply "light", "dark" or "system"; returns True when the result is dark."""
    hints = app.styleHints()
    scheme = {
        "light": Qt.ColorScheme.Light,
        "dark": Qt.ColorScheme.Dark,
    }.get(theme, Qt.ColorScheme.Unknown)  # Unknown: follow the system again
    hints.setColorScheme(scheme)
    return is_dark()


def is_dark() -> bool:
    """True when the palette in use is dark."""
    palette = QGuiApplication.palette()
    return palette.window().color().lightness() < 128
