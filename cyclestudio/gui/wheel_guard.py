"""Mouse-wheel scrolling that scrolls the page, not the field under the pointer.

Qt gives wheel events to whatever spin box or combo box is under the pointer, so
scrolling down a long form changed the values it passed over (epochs went 200 → 164
unnoticed). With the guard, such a field takes the wheel only once it has focus
(clicked or tabbed into); otherwise the wheel scrolls the area that holds it.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QScrollBar,
    QWidget,
)

GUARDED = (QAbstractSpinBox, QComboBox, QAbstractSlider)


class WheelGuard(QObject):
    """An application-wide event filter: unfocused value fields pass the wheel on."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() != QEvent.Type.Wheel or not isinstance(watched, GUARDED):
            return False
        if isinstance(watched, QScrollBar):
            return False  # a scroll bar is itself the thing to scroll
        widget = watched
        assert isinstance(widget, QWidget)
        if widget.hasFocus():
            return False
        # Clicking still focuses the field; the wheel alone never does.
        if widget.focusPolicy() == Qt.FocusPolicy.WheelFocus:
            widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        area = _scroll_area_of(widget)
        if area is not None:
            QApplication.sendEvent(area.viewport(), event)
        return True  # never change the value


def _scroll_area_of(widget: QWidget) -> QAbstractScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QAbstractScrollArea):
            return parent
        parent = parent.parentWidget()
    return None


def install(app: QApplication) -> WheelGuard:
    """Guard every spin box, combo box and slider of ``app`` (once per application)."""
    for child in app.children():
        if isinstance(child, WheelGuard):
            return child
    guard = WheelGuard(app)
    app.installEventFilter(guard)
    return guard
