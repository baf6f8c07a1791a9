"""Choosing a translator: the shipped demo model, the project's runs, or a file.

Everything shown is read from disk without torch: a run folder's state and config
through cyclestudio.runfolder, a model file's domain names from its header.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QPushButton, QWidget

from cyclestudio.errors import UserError
from cyclestudio.exports import EXTENSIONS, is_onnx, read_onnx_header
from cyclestudio.project import Project
from cyclestudio.runfolder import MODEL, RunFolder, model_domains

DEMO_MODEL = "demo.csmodel"
_CHOSEN = Qt.ItemDataRole.UserRole + 1  # marks entries the user picked with Choose…


def shipped_demo_model() -> Path | None:
    """The pre-trained demo model in cyclestudio.resources, if this install has it."""
    try:
        path = Path(str(importlib.resources.files("cyclestudio.resources") / DEMO_MODEL))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


def usable_run(run: Path) -> bool:
    """A run folder `translate` accepts: it has a checkpoint or an exported model."""
    folder = RunFolder(run)
    return folder.resumable() or folder.model.is_file()


def exported_files(run: Path) -> list[Path]:
    """The .onnx files exported into a run folder (`cyclestudio export RUN --format onnx`)."""
    try:
        return sorted(p for p in Path(run).glob("*" + EXTENSIONS["onnx"])
                      if p.is_file() and not p.name.startswith("."))
    except OSError:
        return []


def export_title(path: Path, run: Path | None = None) -> str:
    """How an exported file is listed: ``Run r1, ONNX a2b (day → dusk)``, or for a file
    chosen on its own ``ONNX a2b (day → dusk): model_a2b.onnx``."""
    try:
        header = read_onnx_header(path)
        what = (f"ONNX {header['direction']} ({header['source_domain']} → "
                f"{header['target_domain']})")
    except UserError:
        what = "ONNX (unreadable)"
    return f"Run {run.name}, {what}" if run is not None else f"{what}: {path.name}"


def model_directions(model: Path | None) -> tuple[str, ...]:
    """The directions a model can translate: an exported .onnx holds one, the rest both."""
    if model is not None and is_onnx(model):
        try:
            return (str(read_onnx_header(model)["direction"]),)
        except UserError:
            pass
    return ("a2b", "b2a")


class ModelChooser(QWidget):
    """A combo box of models with a Choose… button; ``changed`` fires on a new choice."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.combo = QComboBox()
        self.combo.setToolTip("A trained model: the demo model, a run of this project (and "
                              "the ONNX files exported from it), a .csmodel or .onnx file")
        self.combo.currentIndexChanged.connect(lambda _: self.changed.emit())
        browse = QPushButton("Choose…")
        browse.setToolTip("A .csmodel or exported .onnx file, or a run folder")
        browse.clicked.connect(self._browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo, 1)
        layout.addWidget(browse)

    def path(self) -> Path | None:
        """The chosen model file or run folder."""
        data = self.combo.currentData()
        return Path(data) if data else None

    def domains(self) -> tuple[str, str]:
        """The chosen model's (A, B) domain names (the project's, else A and B)."""
        model = self.path()
        names = model_domains(model) if model is not None else None
        if names is None and self.project is not None:
            names = (self.project.a.name, self.project.b.name)
        return names or ("A", "B")

    def refresh(self, project: Project | None) -> None:
        """Refill the list: the demo model, the project's usable runs, files chosen before."""
        self.project = project
        keep = self.path()
        chosen = [Path(self.combo.itemData(i)) for i in range(self.combo.count())
                  if self.combo.itemData(i, _CHOSEN) == "file"]
        self.combo.blockSignals(True)
        self.combo.clear()
        demo = shipped_demo_model()
        if demo is not None:
            names = model_domains(demo)
            title = f" ({names[0]} ↔ {names[1]})" if names else ""
            self.combo.addItem(f"Demo model{title}", str(demo))
        if project is not None:
            for rel in reversed(project.runs):
                run = project.resolve(rel)
                if usable_run(run):
                    self.combo.addItem(f"Run {run.name}", str(run))
                best = RunFolder(run).best
                if best.is_file():  # the generators at the best validation pass
                    self.combo.addItem(f"Run {run.name}, best checkpoint", str(best))
                    self.combo.setItemData(self.combo.count() - 1, "The generators at the "
                                           "run's best validation score (checkpoints/best.pt)",
                                           Qt.ItemDataRole.ToolTipRole)
                for export in exported_files(run):
                    self.combo.addItem(export_title(export, run), str(export))
                    self.combo.setItemData(self.combo.count() - 1, str(export),
                                           Qt.ItemDataRole.ToolTipRole)
        for path in chosen:
            self._add_chosen(path)
        if self.combo.count() == 0:
            self.combo.addItem("No model yet: train one, or Choose… a .csmodel", None)
        i = self.combo.findData(str(keep)) if keep is not None else -1
        self.combo.setCurrentIndex(max(i, 0))
        self.combo.blockSignals(False)
        self.changed.emit()

    def choose(self, path: Path) -> None:
        """Use a model file or run folder (added to the list if it is not there)."""
        i = self.combo.findData(str(path))
        if i < 0:
            if self.combo.currentData() is None:
                self.combo.removeItem(self.combo.currentIndex())
            i = self._add_chosen(path)
        self.combo.setCurrentIndex(i)

    def directions(self) -> tuple[str, ...]:
        """The directions the chosen model can translate."""
        return model_directions(self.path())

    def _add_chosen(self, path: Path) -> int:
        title = export_title(path) if is_onnx(path) else (
            path.name if path.is_file() else f"Run {path.name}")
        self.combo.addItem(title, str(path))
        i = self.combo.count() - 1
        self.combo.setItemData(i, "file", _CHOSEN)
        self.combo.setItemData(i, str(path), Qt.ItemDataRole.ToolTipRole)
        return i

    def _browse(self) -> None:
        start = str(self.project.folder) if self.project else ""
        file, _ = QFileDialog.getOpenFileName(
            self, "Choose a model", start,
            f"cyclestudio model (*{Path(MODEL).suffix} *{EXTENSIONS['onnx']});;"
            "Run folder config (config.json)")
        if file:
            path = Path(file)
            self.choose(path.parent if path.name == "config.json" else path)
