"""A split before/after view: one image, the input left of a divider and its translation
right of it. Drag to move the divider; zoom to fit or to 100 % (then drag to pan)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPen, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

GRAB_PX = 10  # how near the divider a press grabs it when the image can be panned
MIN_ZOOM, MAX_ZOOM = 0.05, 16.0


class CompareView(QWidget):
    """Before and after, split by a divider the user drags; fit or 100 % zoom, panning."""

    zoom_changed = Signal(float)  # the scale shown (1.0 is 100 %)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.before: QImage | None = None
        self.after: QImage | None = None
        self.split = 0.5  # where the divider is, as a fraction of the image's width
        self.fit = True
        self.zoom = 1.0  # used when not fitting
        self.center = QPointF(0.5, 0.5)  # the image point at the view's centre (fractions)
        self.placeholder = ""
        self._drag: str | None = None  # "split" or "pan"
        self._last = QPointF()
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 120)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setToolTip("Drag to move the divider between before (left) and after (right); "
                        "double-click or the 100 % button to see pixels as they are, then "
                        "drag to pan; the wheel zooms")

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(480, 360)

    # -- what is shown -------------------------------------------------------------------
    def set_images(self, before: QImage, after: QImage) -> None:
        """Compare these two (``after`` is drawn at ``before``'s size if it differs)."""
        self.before, self.after = before, after
        self.center = QPointF(0.5, 0.5)
        self.update()
        self.zoom_changed.emit(self.scale())

    def clear(self, text: str = "") -> None:
        """Nothing to compare; ``text`` says why."""
        self.before = self.after = None
        self.placeholder = text
        self.update()

    def set_fit(self) -> None:
        """Scale the image to the view."""
        self.fit = True
        self.center = QPointF(0.5, 0.5)
        self.update()
        self.zoom_changed.emit(self.scale())

    def set_zoom(self, zoom: float, around: QPointF | None = None) -> None:
        """Show the image at ``zoom`` (1.0: 100 %), keeping the point under ``around``."""
        if self.before is None:
            return
        if around is not None:
            self.center = self._image_fraction(around)
        self.fit = False
        self.zoom = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
        self._clamp_center()
        self.update()
        self.zoom_changed.emit(self.scale())

    def scale(self) -> float:
        """Screen pixels per image pixel now."""
        if self.before is None:
            return 1.0
        if not self.fit:
            return self.zoom
        w, h = self.before.width(), self.before.height()
        return min(self.width() / max(w, 1), self.height() / max(h, 1))

    def image_rect(self) -> QRectF:
        """Where the image is drawn, in widget coordinates."""
        if self.before is None:
            return QRectF()
        s = self.scale()
        w, h = self.before.width() * s, self.before.height() * s
        x = self.width() / 2 - self.center.x() * w
        y = self.height() / 2 - self.center.y() * h
        return QRectF(x, y, w, h)

    def pannable(self) -> bool:
        """True when the image is larger than the view (dragging away from the divider pans)."""
        rect = self.image_rect()
        return not self.fit and (rect.width() > self.width() or rect.height() > self.height())

    def divider_x(self) -> float:
        """The divider's x in widget coordinates."""
        rect = self.image_rect()
        return rect.left() + self.split * rect.width()

    def set_split(self, fraction: float) -> None:
        """Put the divider at ``fraction`` of the image's width."""
        self.split = max(0.0, min(1.0, fraction))
        self.update()

    def _image_fraction(self, pos: QPointF) -> QPointF:
        rect = self.image_rect()
        if rect.width() <= 0 or rect.height() <= 0:
            return QPointF(0.5, 0.5)
        return QPointF((pos.x() - rect.left()) / rect.width(),
                       (pos.y() - rect.top()) / rect.height())

    def _clamp_center(self) -> None:
        rect = self.image_rect()
        if rect.width() <= 0:
            return
        half_w = self.width() / 2 / rect.width()
        half_h = self.height() / 2 / rect.height()
        x = 0.5 if half_w >= 0.5 else min(max(self.center.x(), half_w), 1 - half_w)
        y = 0.5 if half_h >= 0.5 else min(max(self.center.y(), half_h), 1 - half_h)
        self.center = QPointF(x, y)

    # -- painting ------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window())
        if self.before is None or self.after is None:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect().adjusted(12, 12, -12, -12),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self.placeholder)
            return
        rect = self.image_rect()
        # Enlarged small images keep their pixels sharp; shrunk ones are smoothed.
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.scale() < 1)
        divider = self.divider_x()
        left = QRectF(rect.left(), rect.top(), max(0.0, divider - rect.left()), rect.height())
        right = QRectF(divider, rect.top(), max(0.0, rect.right() - divider), rect.height())
        bw, bh = self.before.width(), self.before.height()
        if left.width() > 0:
            painter.drawImage(left, self.before, QRectF(0, 0, bw * self.split, bh))
        if right.width() > 0:
            aw, ah = self.after.width(), self.after.height()
            painter.drawImage(right, self.after,
                              QRectF(aw * self.split, 0, aw * (1 - self.split), ah))
        x = max(0.0, min(float(self.width()), divider))
        y0, y1 = max(0.0, rect.top()), min(float(self.height()), rect.bottom())
        painter.setPen(QPen(QColor(255, 255, 255, 220), 2))
        painter.drawLine(QPointF(x, y0), QPointF(x, y1))
        painter.setPen(QPen(QColor(0, 0, 0, 120), 1))
        painter.drawLine(QPointF(x + 1.5, y0), QPointF(x + 1.5, y1))
        self._handle(painter, x, (y0 + y1) / 2)
        # The labels sit in the image's top corners; on a small image, in the view's.
        visible = rect.intersected(QRectF(self.rect()))
        if visible.width() >= 160 and visible.height() >= 60:
            left, right, top = visible.left() + 8, visible.right() - 8, visible.top() + 8
        else:
            left, right, top = 8.0, self.width() - 8.0, 8.0
        self._label(painter, "before", QPointF(left, top), Qt.AlignmentFlag.AlignLeft)
        self._label(painter, "after", QPointF(right, top), Qt.AlignmentFlag.AlignRight)

    def _handle(self, painter: QPainter, x: float, y: float) -> None:
        painter.setPen(QPen(QColor(0, 0, 0, 140), 1))
        painter.setBrush(QColor(255, 255, 255, 230))
        painter.drawEllipse(QPointF(x, y), 11, 11)
        painter.setPen(QPen(QColor(60, 60, 60), 2))
        for direction in (-1, 1):
            tip = x + direction * 7
            painter.drawLine(QPointF(tip, y), QPointF(tip - direction * 4, y - 4))
            painter.drawLine(QPointF(tip, y), QPointF(tip - direction * 4, y + 4))

    def _label(self, painter: QPainter, text: str, at: QPointF,
               align: Qt.AlignmentFlag) -> None:
        font = QFont(self.font())
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        w, h = metrics.horizontalAdvance(text) + 12, metrics.height() + 4
        x = at.x() if align == Qt.AlignmentFlag.AlignLeft else at.x() - w
        box = QRectF(x, at.y(), w, h)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 140))
        painter.drawRoundedRect(box, 4, 4)
        painter.setPen(QColor("white"))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    # -- mouse -----------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self.before is None or event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.position()
        near = abs(pos.x() - self.divider_x()) <= GRAB_PX
        if self.pannable() and not near:
            self._drag = "pan"
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        else:
            self._drag = "split"
            self._move_split(pos)
        self._last = pos

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        pos = event.position()
        if self._drag == "split":
            self._move_split(pos)
        elif self._drag == "pan":
            rect = self.image_rect()
            delta = pos - self._last
            self.center = QPointF(self.center.x() - delta.x() / max(rect.width(), 1),
                                  self.center.y() - delta.y() / max(rect.height(), 1))
            self._clamp_center()
            self.update()
        elif self.before is not None:
            near = abs(pos.x() - self.divider_x()) <= GRAB_PX
            self.setCursor(Qt.CursorShape.OpenHandCursor if self.pannable() and not near
                           else Qt.CursorShape.SplitHCursor)
        self._last = pos

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self._drag == "pan":
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        self._drag = None

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self.fit:
            self.set_zoom(1.0, around=event.position())
        else:
            self.set_fit()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt API
        if self.before is None:
            return
        steps = event.angleDelta().y() / 120
        if steps:
            self.set_zoom(self.scale() * (1.25 ** steps), around=event.position())

    def _move_split(self, pos: QPointF) -> None:
        rect = self.image_rect()
        if rect.width() > 0:
            self.set_split((pos.x() - rect.left()) / rect.width())

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        if not self.fit:
            self._clamp_center()
        self.zoom_changed.emit(self.scale())
