"""How a training run stands: progress and speed, its warnings, and why it ended if it failed."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cyclestudio.humanize import format_duration


class RunStatus(QWidget):
    """Progress bar and one line: iteration, epoch, images/s, ETA, device."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setFormat("%p%")
        self.line = QLabel("No run.")
        self.device = ""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.line)

    def show_progress(self, e: dict[str, Any], state: str = "") -> None:
        """Show a progress event."""
        total = int(e.get("total_iterations") or 0)
        done = int(e.get("iteration") or 0)
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(min(done, max(total, 1)))
        parts = [f"iteration {done:,}" + (f" / {total:,}" if total else "")]
        if e.get("epoch") is not None:
            parts.append(f"epoch {e['epoch']}")
        if e.get("images_per_s") is not None:
            parts.append(f"{float(e['images_per_s']):.1f} images/s")
        parts.append(f"ETA {format_duration(e.get('eta_s'))}")
        if self.device:
            parts.append(self.device)
        if state:
            parts.append(state)
        self.line.setText(" · ".join(parts))


class ErrorPanel(QFrame):
    """Why a worker ended abnormally, the last lines of its log, and a Resume button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("ErrorPanel { border: 1px solid #d33; border-radius: 4px; }")
        self.reason = QLabel()
        self.reason.setWordWrap(True)
        self.reason.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumHeight(130)
        self.log.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.resume = QPushButton("Resume from the last checkpoint")
        self.dismiss = QPushButton("Dismiss")
        self.dismiss.clicked.connect(self.hide)
        buttons = QHBoxLayout()
        buttons.addWidget(self.resume)
        buttons.addStretch(1)
        buttons.addWidget(self.dismiss)
        layout = QVBoxLayout(self)
        layout.addWidget(self.reason)
        layout.addWidget(self.log)
        layout.addLayout(buttons)
        self.hide()

    def show_error(self, reason: str, log: list[str], can_resume: bool,
                   resume_text: str = "Resume from the last checkpoint") -> None:
        """Show why the run ended (``resume_text``: what the resume button will do)."""
        self.resume.setText(resume_text)
        self.reason.setText(f"<b style='color:#d33'>The run ended abnormally.</b><br>"
                            f"{reason.replace(chr(10), '<br>')}")
        self.log.setPlainText("\n".join(log) or "(the worker wrote no log)")
        self.log.verticalScrollBar().setValue(self.log.verticalScrollBar().maximum())
        self.resume.setVisible(can_resume)
        self.show()


class WarningBanner(QLabel):
    """The run's own advice (a collapsing discriminator, mode collapse, a stretched
    schedule): visible above the plot, not buried in a tooltip; the newest three stay."""

    KEEP = 3

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setStyleSheet(
            "QLabel { background: #fff4d6; color: #5c4400; border: 1px solid #e0c060;"
            " border-radius: 3px; padding: 4px; }")
        self.lines: list[str] = []
        self.hide()

    def add(self, message: str) -> None:
        """Show one more warning."""
        if not message:
            return
        self.lines = [*self.lines, message][-self.KEEP:]
        self.setText("\n".join(f"⚠ {line}" for line in self.lines))
        self.setToolTip("\n\n".join(self.lines))
        self.show()

    def clear(self) -> None:  # type: ignore[override]
        """No warnings (a new run starts)."""
        self.lines = []
        super().clear()
        self.hide()


class Note(QFrame):
    """A highlighted piece of advice with one button that acts on it."""

    def __init__(self, text: str, action: str, tip: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("note")
        self.setStyleSheet(
            "#note { background: #fff4d6; border: 1px solid #e0c060; border-radius: 3px; }"
            " #note QLabel { color: #5c4400; }")
        self.text = QLabel(text)
        self.text.setWordWrap(True)
        self.button = QPushButton(action)
        self.button.setToolTip(tip)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignLeft)
        self.hide()
