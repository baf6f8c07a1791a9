"""Export…: a run's generators as a .csmodel, ONNX or TorchScript file, from the Training page.

Runs ``python -m cyclestudio export RUN --format F --direction D --out PATH --events``
through JobRunner (the window never imports torch or onnxruntime) and lists each
parity check as it arrives, then the files written or why nothing was.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cyclestudio import options
from cyclestudio.exports import output_paths
from cyclestudio.gui.drop_target import pick_folder
from cyclestudio.gui.jobs import JobRunner, describe_end
from cyclestudio.runfolder import model_domains


class ExportDialog(QDialog):
    """Choose a format and direction for a run, export it, and show the parity checks."""

    exported = Signal(list)  # the paths written

    def __init__(self, run: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run = Path(run)
        self.setWindowTitle(f"Export {self.run.name}")
        self.runner = JobRunner(self)
        self.runner.events.connect(self._events)
        self.runner.ended.connect(self._ended)
        self.written: list[str] = []
        a, b = model_domains(self.run) or ("A", "B")

        self.format = QComboBox()
        for value in options.EXPORT_FORMATS:
            self.format.addItem(options.EXPORT_FORMAT_TITLES[value], value)
        self.format.setToolTip(options.EXPORT_BY_NAME["format"].help)
        self.direction = QComboBox()
        titles = {"a2b": f"A → B ({a} → {b})", "b2a": f"B → A ({b} → {a})",
                  "both": "both"}
        for value in options.EXPORT_DIRECTIONS:
            self.direction.addItem(titles[value], value)
        self.direction.setCurrentIndex(self.direction.findData(
            options.default("direction", options.EXPORT_BY_NAME)))
        self.direction.setToolTip(options.EXPORT_BY_NAME["direction"].help)
        self.folder = QLineEdit(str(self.run))
        self.folder.setToolTip("Where the files are written (the run folder by default, where "
                               "the Convert page lists them)")
        self.folder.textChanged.connect(self._update)
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        self.files = QLabel()
        self.files.setWordWrap(True)
        self.files.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("Direction", self.direction)
        form.addRow("Folder", folder_row)
        form.addRow("Writes", self.files)

        self.checks = QListWidget()
        self.checks.setToolTip("Each exported graph is run beside PyTorch on random and real "
                               "images at two sizes; a file is kept only if they agree")
        self.checks.setMinimumHeight(120)
        self.status = QLabel("An ONNX or TorchScript file is checked against PyTorch before "
                             "it is kept.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Parity with PyTorch"))
        layout.addWidget(self.checks, 1)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.format.currentIndexChanged.connect(self._update)
        self.direction.currentIndexChanged.connect(self._update)
        self.resize(620, 420)
        self._update()

    def targets(self) -> dict[str, Path]:
        """The files the chosen settings write."""
        fmt = str(self.format.currentData())
        direction = str(self.direction.currentData())
        folder = Path(self.folder.text().strip() or self.run)
        return output_paths(self.run, fmt, "both" if fmt == "csmodel" else direction,
                            folder / "model")

    def arguments(self) -> list[str]:
        """The `cyclestudio export` command line (without the program)."""
        fmt = str(self.format.currentData())
        args = ["export", str(self.run), "--format", fmt]
        if fmt != "csmodel":
            args += ["--direction", str(self.direction.currentData())]
        folder = Path(self.folder.text().strip() or self.run)
        return [*args, "--out", str(folder / "model"), "--events"]

    def _update(self) -> None:
        csmodel = self.format.currentData() == "csmodel"
        self.direction.setEnabled(not csmodel and not self.runner.running())
        self.files.setText("\n".join(
            p.name + ("  (replaces the file there)" if p.exists() else "")
            for p in self.targets().values()))
        self.export_button.setEnabled(not self.runner.running())

    def _browse(self) -> None:
        folder = pick_folder(self, "Export to", self.folder.text())
        if folder:
            self.folder.setText(str(folder))

    def start(self) -> None:
        """Run the export in a worker."""
        if self.runner.running():
            return
        self.checks.clear()
        self.written = []
        self.status.setText("Exporting…")
        for w in (self.format, self.direction, self.folder):
            w.setEnabled(False)
        self.runner.start(self.arguments())
        self._update()

    def _events(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            if e.get("event") == "parity":
                self.checks.addItem(parity_text(e))
                self.checks.scrollToBottom()
            elif e.get("event") == "finished":
                self.written = [str(p) for p in e.get("files") or []]

    def _ended(self, exit_code: int, crashed: bool, event: dict[str, Any] | None) -> None:
        for w in (self.format, self.folder):
            w.setEnabled(True)
        if event is not None and event.get("event") == "finished" and exit_code == 0:
            names = ", ".join(Path(p).name for p in self.written)
            self.status.setText(f"<b>Written:</b> {names}<br>in {Path(self.written[0]).parent}"
                                if self.written else "Nothing was written.")
            self.exported.emit(self.written)
        else:
            reason = describe_end(exit_code, crashed, event)
            self.status.setText("<b style='color:#d33'>Export failed.</b> "
                                + reason.replace("\n", "<br>"))
        self._update()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        self.runner.stop_and_wait(3000)
        super().closeEvent(event)

    def reject(self) -> None:
        """Close (an export in progress is stopped)."""
        self.runner.stop_and_wait(3000)
        super().reject()


def parity_text(e: dict[str, Any]) -> str:
    """A `parity` event as one line."""
    h, w = (e.get("size") or [0, 0])[:2]
    psnr = e.get("psnr_db")
    psnr_text = "∞" if psnr is None or (isinstance(psnr, float) and math.isinf(psnr)) else (
        f"{psnr:.1f} dB")
    mark = "✓" if e.get("ok") else "✗"
    return (f"{mark} {e.get('direction')} · {e.get('image')} · {w}×{h} · max |Δ| "
            f"{float(e.get('max_abs_error') or 0):.1e} · PSNR {psnr_text}")
