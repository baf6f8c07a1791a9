"""Light, dark, or follow the system, on the Fusion style.

Asking Qt for a colour scheme (``QStyleHints.setColorScheme``) only works where the
platform theme honours it; on a plain X11 session (no GNOME/KDE theme plugin, Xvfb) it
changes nothing. So "light" and "dark" set palettes of our own, and "system" asks for
the platform's scheme and palette again.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

Role = QPalette.ColorRole
Group = QPalette.ColorGroup

DARK = {
    Role.Window: "#2b2b2b", Role.WindowText: "#e6e6e6", Role.Base: "#1f1f1f",
    Role.AlternateBase: "#2a2a2a", Role.ToolTipBase: "#3a3a3a", Role.ToolTipText: "#f0f0f0",
    Role.PlaceholderText: "#8a8a8a", Role.Text: "#e6e6e6", Role.Button: "#353535",
    Role.ButtonText: "#e6e6e6", Role.BrightText: "#ff6b6b", Role.Light: "#4a4a4a",
    Role.Midlight: "#3e3e3e", Role.Mid: "#5c5c5c", Role.Dark: "#1a1a1a",
    Role.Shadow: "#000000", Role.Highlight: "#3d7bd9", Role.HighlightedText: "#ffffff",
    Role.Link: "#6ab0ff", Role.LinkVisited: "#b99cff",
}
DARK_DISABLED = {
    Role.WindowText: "#7a7a7a", Role.Text: "#7a7a7a", Role.ButtonText: "#7a7a7a",
    Role.Base: "#262626", Role.Button: "#2f2f2f", Role.Highlight: "#4a4a4a",
    Role.HighlightedText: "#9a9a9a",
}


def dark_palette() -> QPalette:
    """A dark Fusion palette with readable disabled text and links."""
    palette = QPalette()
    for role, colour in DARK.items():
        palette.setColor(role, QColor(colour))
    for role, colour in DARK_DISABLED.items():
        palette.setColor(Group.Disabled, role, QColor(colour))
    return palette


def apply_theme(app: QApplication, theme: str) -> bool:
    """Apply "light", "dark" or "system"; returns True when the result is dark."""
    scheme = {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}.get(
        theme, Qt.ColorScheme.Unknown)  # Unknown: follow the system again
    app.styleHints().setColorScheme(scheme)
    if theme == "dark":
        app.setPalette(dark_palette())
    elif theme == "light":
        app.setPalette(app.style().standardPalette())
    else:
        app.setPalette(QPalette())  # nothing set: resolves to the platform's palette
    return is_dark()


def is_dark() -> bool:
    """True when the palette in use is dark."""
    palette = QGuiApplication.palette()
    return palette.window().color().lightness() < 128
