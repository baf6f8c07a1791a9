"""The Convert page: translate images in bulk with a trained model.

Dropping files or folders on the page (or picking them) runs
``python -m cyclestudio translate MODEL INPUT... --out DIR --direction D --events``
through JobRunner, so the window stays torch-free and a crash in the translator takes
nothing else with it. Inputs dropped while a job runs wait for it and go next.
"Watch a folder" runs ``cyclestudio watch MODEL --in DIR --out OUT ... --events`` the
same way: each image that lands in DIR is translated and listed until it is turned off.
"""

from __future__ import annotations

import importlib.resources
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRunnable,
    Qt,
    QThreadPool,
    QUrl,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QDragEnterEvent, QDropEvent, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from cyclestudio import options
from cyclestudio.core.imagescan import is_image_name
from cyclestudio.gui.jobs import JobRunner, describe_end
from cyclestudio.gui.settings import Settings, data_dir
from cyclestudio.gui.thumbnails import small_pil, to_qimage
from cyclestudio.humanize import format_duration
from cyclestudio.project import Project

DEMO_MODEL = "demo.csmodel"
PREVIEW_SIDE = 360
STATUS_COLOURS = {"translated": "#2e9d4f", "skipped": "#c08a00", "failed": "#d33"}


def shipped_demo_model() -> Path | None:
    """The pre-trained demo model that ships in cyclestudio.resources, if this install has it.

    Found by package data, not by importing the torch side (cyclestudio.core.demo).
    """
    try:
        path = Path(str(importlib.resources.files("cyclestudio.resources") / DEMO_MODEL))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


def model_domains(model: Path) -> tuple[str, str] | None:
    """The (A, B) domain names a model file or run folder records, read without torch."""
    try:
        if model.is_dir():
            config = json.loads((model / "config.json").read_text(encoding="utf-8"))
            data = config.get("data", {})
            names = data.get("a_name"), data.get("b_name")
        else:
            # A .csmodel is safetensors: an 8-byte length, then a JSON header whose
            # __metadata__ holds our own JSON under "cyclestudio".
            with open(model, "rb") as f:
                (size,) = struct.unpack("<Q", f.read(8))
                if size > 100_000_000:
                    return None
                header = json.loads(f.read(size))
            info = json.loads(header["__metadata__"]["cyclestudio"])
            names = info.get("a_name"), info.get("b_name")
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None
    if all(isinstance(n, str) and n for n in names):
        return str(names[0]), str(names[1])
    return None


def usable_run(run: Path) -> bool:
    """A run folder `translate` accepts: it has a checkpoint or an exported model."""
    return (run / "checkpoints" / "latest.pt").exists() or (run / "model.csmodel").exists()


def preview_image(path: str, side: int = PREVIEW_SIDE) -> QImage | None:
    """A small upright RGBA copy of an image for the before/after view; None if unreadable."""
    im = small_pil(path, side)
    return None if im is None else to_qimage(im)


class _PreviewSignals(QObject):
    loaded = Signal(object)  # (before path, after path, before QImage|None, after QImage|None)


class _PreviewJob(QRunnable):
    def __init__(self, before: str, after: str, signals: _PreviewSignals) -> None:
        super().__init__()
        self.before, self.after, self.signals = before, after, signals

    def run(self) -> None:
        self.signals.loaded.emit((self.before, self.after, preview_image(self.before),
                                  preview_image(self.after)))


@dataclass
class Result:
    """One input's outcome, from a `file` event."""

    input: str
    output: str | None
    status: str
    reason: str | None
    code: str | None = None


# The worker's reasons name its command-line flags; the app names its own controls.
APP_REASONS = {
    "output_exists": "output exists (tick “replace outputs that already exist” to replace it)",
}


class ResultsModel(QAbstractTableModel):
    """Per-file results (status, file, output or reason); rows arrive in batches."""

    HEADERS = ("Status", "File", "Result")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.results: list[Result] = []

    def clear(self) -> None:
        """No results."""
        self.beginResetModel()
        self.results = []
        self.endResetModel()

    def extend(self, results: list[Result]) -> None:
        """Append results."""
        if results:
            first = len(self.results)
            self.beginInsertRows(QModelIndex(), first, first + len(results) - 1)
            self.results.extend(results)
            self.endInsertRows()

    def counts(self) -> dict[str, int]:
        """How many inputs were translated, skipped and failed."""
        out = {"translated": 0, "skipped": 0, "failed": 0}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.results)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt API
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        if not index.isValid():
            return None
        r = self.results[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return r.status
            if column == 1:
                return Path(r.input).name
            if r.status == "translated":
                name = Path(r.output).name if r.output else ""
                return f"{name} ({r.reason})" if r.reason else name
            return r.reason or ""
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [r.input]
            if r.output:
                lines.append(f"→ {r.output}")
            if r.reason:
                lines.append(r.reason)
            return "\n".join(lines)
        if role == Qt.ItemDataRole.ForegroundRole and column == 0:
            return QBrush(QColor(STATUS_COLOURS.get(r.status, "#888")))
        return None


class DropArea(QFrame):
    """Where images and folders are dropped; emits the local paths."""

    dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("drop")
        self.setStyleSheet("#drop { border: 2px dashed palette(mid); border-radius: 6px; }")
        self.label = QLabel("Drop images or folders here to translate them")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setWordWrap(True)
        self.add_files = QPushButton("Add images…")
        self.add_folder = QPushButton("Add folder…")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.add_files)
        buttons.addWidget(self.add_folder)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.label)
        layout.addLayout(buttons)
        layout.addStretch(1)
        self.setMinimumHeight(110)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls() and self.isEnabled():
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls() and self.isEnabled():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.dropped.emit(paths)


class BeforeAfter(QWidget):
    """The last translated image next to its input."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.before = self._image_label()
        self.after = self._image_label()
        self.before_caption = QLabel("before")
        self.after_caption = QLabel("after")
        grid = QHBoxLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        for image, caption in ((self.before, self.before_caption),
                               (self.after, self.after_caption)):
            column = QVBoxLayout()
            column.addWidget(image, 1)
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption.setStyleSheet("color: gray")
            column.addWidget(caption)
            grid.addLayout(column, 1)
        self.pixmaps: tuple[QPixmap, QPixmap] | None = None
        self.clear()

    @staticmethod
    def _image_label() -> QLabel:
        label = QLabel()
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        label.setMinimumSize(120, 120)
        return label

    def clear(self) -> None:
        """Nothing translated yet."""
        self.pixmaps = None
        self.before.clear()
        self.after.clear()
        self.before.setText("The last translated image appears here,")
        self.after.setText("next to its input.")
        self.before_caption.setText("before")
        self.after_caption.setText("after")

    def show_pair(self, before: QImage, after: QImage, before_name: str, after_name: str):
        """Show an input and its translation."""
        self.pixmaps = (QPixmap.fromImage(before), QPixmap.fromImage(after))
        self.before_caption.setText(f"before: {before_name}")
        self.after_caption.setText(f"after: {after_name}")
        self._fit()

    def _fit(self) -> None:
        if self.pixmaps is None:
            return
        for label, pixmap in zip((self.before, self.after), self.pixmaps, strict=True):
            size = label.size()
            mode = (Qt.TransformationMode.SmoothTransformation
                    if pixmap.width() > size.width() or pixmap.height() > size.height()
                    else Qt.TransformationMode.FastTransformation)
            label.setPixmap(pixmap.scaled(size, Qt.AspectRatioMode.KeepAspectRatio, mode))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._fit()


class ConvertPage(QWidget):
    """Pick a model, a direction and an output folder; drop images; watch them convert."""

    # (succeeded, title, message): the main window turns it into a notification
    job_ended = Signal(bool, str, str)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.project: Project | None = None
        self.pending: list[Path] = []
        self.out_dir: Path | None = None
        self.stopping = False
        self.mode = "convert"  # or "watch": what the runner is running
        self.runner = JobRunner(self)
        self.runner.events.connect(self._events)
        self.runner.ended.connect(self._ended)
        self._preview_busy = False
        self._preview_next: tuple[str, str] | None = None
        self._preview_pool = QThreadPool(self)
        self._preview_pool.setMaxThreadCount(1)
        self._preview_signals = _PreviewSignals(self)
        self._preview_signals.loaded.connect(self._preview_loaded)

        # -- the setup -------------------------------------------------------------
        self.model = QComboBox()
        self.model.setToolTip("A trained model: the demo model, a run of this project, "
                              "or a .csmodel file")
        self.model.currentIndexChanged.connect(self._model_chosen)
        browse_model = QPushButton("Choose…")
        browse_model.setToolTip("A .csmodel file or a run folder")
        browse_model.clicked.connect(self._browse_model)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(browse_model)
        self.direction = QComboBox()
        self.output = QLineEdit()
        self.output.setToolTip("Translated images are written here (a dropped folder's "
                               "tree is mirrored under it)")
        browse_output = QPushButton("Choose…")
        browse_output.clicked.connect(self._browse_output)
        output_row = QHBoxLayout()
        output_row.addWidget(self.output, 1)
        output_row.addWidget(browse_output)
        self.format = QComboBox()
        for value in options.FORMATS:
            self.format.addItem(options.FORMAT_TITLES[value], value)
        quality = options.TRANSLATE_BY_NAME["quality"]
        self.quality = QSpinBox()
        self.quality.setRange(int(quality.min or 1), int(quality.max or 100))
        self.quality.setValue(quality.default)
        self.quality.setToolTip("JPEG/WebP quality (100 makes WebP lossless)")
        self.format.currentIndexChanged.connect(self._format_chosen)
        format_row = QHBoxLayout()
        format_row.addWidget(self.format, 1)
        format_row.addWidget(QLabel("quality"))
        format_row.addWidget(self.quality)
        self.overwrite = QCheckBox("replace outputs that already exist")
        form = QFormLayout()
        form.addRow("Model", model_row)
        form.addRow("Direction", self.direction)
        form.addRow("Output folder", output_row)
        form.addRow("Format", format_row)
        form.addRow("", self.overwrite)
        self.setup = QWidget()
        self.setup.setLayout(form)
        self.watch = QCheckBox("Watch a folder:")
        self.watch.setToolTip("Translate every image that arrives in this folder (and its "
                              "subfolders) until this is turned off")
        self.watch.toggled.connect(self._watch_toggled)
        self.watch_folder = QLineEdit()
        self.watch_folder.setPlaceholderText("a folder to watch")
        browse_watch = QPushButton("Choose…")
        browse_watch.clicked.connect(self._browse_watch)
        self.watch_row = QWidget()
        watch_layout = QHBoxLayout(self.watch_row)
        watch_layout.setContentsMargins(0, 0, 0, 0)
        watch_layout.addWidget(self.watch)
        watch_layout.addWidget(self.watch_folder, 1)
        watch_layout.addWidget(browse_watch)

        # -- dropping, progress and results ------------------------------------------------
        self.drop_area = DropArea()
        self.drop_area.dropped.connect(self.convert)
        self.drop_area.add_files.clicked.connect(self._pick_files)
        self.drop_area.add_folder.clicked.connect(self._pick_folder)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.status = QLabel("Choose a model, then drop images.")
        self.status.setWordWrap(True)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the image in hand (it is still written)")
        self.stop_button.clicked.connect(self.stop)
        self.output_link = QLabel()
        self.output_link.setOpenExternalLinks(True)
        self.output_link.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.bar, 1)
        progress_row.addWidget(self.stop_button)
        self.results = ResultsModel(self)
        self.table = QTableView()
        self.table.setModel(self.results)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        # Wide enough for the longest status whatever rows are in view ("tran…" was cut).
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        metrics = self.table.fontMetrics()
        self.table.setColumnWidth(0, max(metrics.horizontalAdvance(s) for s in (
            *STATUS_COLOURS, ResultsModel.HEADERS[0])) + 3 * metrics.averageCharWidth())
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.setColumnWidth(1, 220)
        self.table.setWordWrap(False)
        self.preview = BeforeAfter()

        # Left: what to do and where it stands; the drop area takes the spare height,
        # a big target. Right: the last image before/after above the per-file results.
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(QLabel("<h2>Convert</h2>"))
        left_layout.addWidget(self.setup)
        left_layout.addWidget(self.watch_row)
        left_layout.addWidget(self.drop_area, 1)
        left_layout.addLayout(progress_row)
        left_layout.addWidget(self.status)
        left_layout.addWidget(self.output_link)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.preview)
        right.addWidget(self.table)
        right.setSizes([380, 420])
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([560, 640])
        QVBoxLayout(self).addWidget(splitter)

        self._format_chosen(0)
        self.refresh_models()
        self._update_buttons()

    # -- models, directions, output ---------------------------------------------------------
    def set_project(self, project: Project | None) -> None:
        """Offer a project's runs as models and default the output folder into it."""
        self.project = project
        self.output.setText(str(self.default_output()))
        self.refresh_models()

    def default_output(self) -> Path:
        """The Settings folder for converted images, else `translated/` in the project."""
        if self.settings.convert_folder:
            return Path(self.settings.convert_folder)
        if self.project is not None:
            return self.project.folder / "translated"
        return data_dir() / "translated"

    def refresh_models(self) -> None:
        """Refill the model list (the demo model, the project's usable runs, chosen files)."""
        keep = self.model_path()
        chosen = [Path(self.model.itemData(i)) for i in range(self.model.count())
                  if self.model.itemData(i, Qt.ItemDataRole.UserRole + 1) == "file"]
        self.model.blockSignals(True)
        self.model.clear()
        demo = shipped_demo_model()
        if demo is not None:
            names = model_domains(demo)
            title = f" ({names[0]} ↔ {names[1]})" if names else ""
            self.model.addItem(f"Demo model{title}", str(demo))
        if self.project is not None:
            for rel in reversed(self.project.runs):
                run = self.project.resolve(rel)
                if usable_run(run):
                    self.model.addItem(f"Run {run.name}", str(run))
        for path in chosen:
            self._add_file_item(path)
        if self.model.count() == 0:
            self.model.addItem("No model yet: train one, or Choose… a .csmodel", None)
        i = self.model.findData(str(keep)) if keep is not None else -1
        self.model.setCurrentIndex(max(i, 0))
        self.model.blockSignals(False)
        self._model_chosen(self.model.currentIndex())

    def _add_file_item(self, path: Path) -> int:
        self.model.addItem(path.name if path.is_file() else f"Run {path.name}", str(path))
        i = self.model.count() - 1
        self.model.setItemData(i, "file", Qt.ItemDataRole.UserRole + 1)
        self.model.setItemData(i, str(path), Qt.ItemDataRole.ToolTipRole)
        return i

    def choose_model(self, path: Path) -> None:
        """Use a model file or run folder (added to the list if it is not there)."""
        i = self.model.findData(str(path))
        if i < 0:
            if self.model.currentData() is None:
                self.model.removeItem(self.model.currentIndex())
            i = self._add_file_item(path)
        self.model.setCurrentIndex(i)

    def model_path(self) -> Path | None:
        """The chosen model file or run folder."""
        data = self.model.currentData()
        return Path(data) if data else None

    def _model_chosen(self, _: int) -> None:
        model = self.model_path()
        names = model_domains(model) if model is not None else None
        if names is None and self.project is not None:
            names = (self.project.a.name, self.project.b.name)
        a, b = names or ("A", "B")
        current = self.direction.currentData() or "a2b"
        self.direction.clear()
        self.direction.addItem(f"A → B ({a} → {b})", "a2b")
        self.direction.addItem(f"B → A ({b} → {a})", "b2a")
        self.direction.setCurrentIndex(max(self.direction.findData(current), 0))
        self._update_buttons()

    def _browse_model(self) -> None:
        file, _ = QFileDialog.getOpenFileName(
            self, "Choose a model", str(self.project.folder if self.project else ""),
            "cyclestudio model (*.csmodel);;Run folder config (config.json)")
        if file:
            path = Path(file)
            self.choose_model(path.parent if path.name == "config.json" else path)

    def _browse_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.output.text())
        if folder:
            self.output.setText(folder)

    def _format_chosen(self, _: int) -> None:
        self.quality.setEnabled(self.format.currentData() in ("jpg", "webp"))

    def _pick_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Images to translate", "",
            "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp *.gif *.ppm *.pgm *.tga)")
        if files:
            self.convert([Path(f) for f in files])

    def _pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder of images to translate")
        if folder:
            self.convert([Path(folder)])

    def _browse_watch(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder to watch",
                                                  self.watch_folder.text())
        if folder:
            self.watch_folder.setText(folder)

    # -- running ----------------------------------------------------------------------
    def _common_arguments(self) -> list[str]:
        args = ["--out", self.output.text().strip() or str(self.default_output()),
                "--direction", str(self.direction.currentData() or "a2b"),
                "--format", str(self.format.currentData())]
        if self.format.currentData() in ("jpg", "webp"):
            args += ["--quality", str(self.quality.value())]
        if self.settings.default_device != "auto":
            args += ["--device", self.settings.default_device]
        return args

    def watch_arguments(self, folder: Path) -> list[str]:
        """The `cyclestudio watch` command line for ``folder`` (without the program)."""
        model = self.model_path()
        assert model is not None
        args = ["watch", str(model), "--in", str(folder), *self._common_arguments()]
        if self.overwrite.isChecked():
            args.append("--overwrite")
        return [*args, "--events"]

    def translate_arguments(self, inputs: list[Path]) -> list[str]:
        """The `cyclestudio translate` command line for ``inputs`` (without the program)."""
        model = self.model_path()
        assert model is not None
        args = ["translate", str(model), *[str(p) for p in inputs], *self._common_arguments()]
        if self.overwrite.isChecked():
            args.append("--overwrite")
        args.append("--events")
        return args

    def convert(self, paths: list[Path]) -> None:
        """Translate these files and folders (after the running job, if there is one)."""
        inputs = [Path(p) for p in paths if Path(p).is_dir() or Path(p).is_file()]
        ignored = len(paths) - len(inputs)
        if not inputs:
            self.status.setText("Nothing to translate: drop image files or folders.")
            return
        if self.model_path() is None:
            self.status.setText("Choose a model first (Choose… next to Model).")
            return
        if self.mode == "watch" and self.runner.running():
            self.status.setText("Watching a folder: turn the watch off to convert other "
                                "images, or put them in the watched folder.")
            return
        not_images = [p for p in inputs if p.is_file() and not is_image_name(p)]
        if not_images and len(not_images) == len(inputs):
            # translate reports these too; say it at once when nothing else was dropped
            self.status.setText(f"{not_images[0].name} is not an image file.")
        self.pending.extend(inputs)
        if ignored:
            self.status.setText(f"{ignored} dropped item(s) are not files or folders.")
        if not self.runner.running():
            self._start_next()
        else:
            self.status.setText(self.status.text() + f" · {len(self.pending)} waiting")

    def _start_next(self) -> None:
        inputs, self.pending = self.pending, []
        if not inputs:
            return
        what = inputs[0].name + (f" and {len(inputs) - 1} more" if len(inputs) > 1 else "")
        self._start("convert", self.translate_arguments(inputs),
                    f"Starting the translator for {what}…")

    def _start(self, mode: str, args: list[str], message: str) -> None:
        self.mode = mode
        self.results.clear()
        self.preview.clear()
        self.stopping = False
        self.out_dir = Path(args[args.index("--out") + 1])
        self.output_link.setText(
            f"Output: <a href='{QUrl.fromLocalFile(str(self.out_dir)).toString()}'>"
            f"{self.out_dir}</a>")
        self.bar.setRange(0, 0)  # busy until the worker counts the inputs
        self.status.setText(message)
        self.runner.start(args)
        self._update_buttons()

    def _watch_toggled(self, on: bool) -> None:
        if not on:
            if self.mode == "watch":
                self.stop()
            return
        folder = Path(self.watch_folder.text().strip()).expanduser()
        problem = None
        if self.runner.running():
            problem = "Wait for the conversion to end (or Stop it) first."
        elif self.model_path() is None:
            problem = "Choose a model first (Choose… next to Model)."
        elif not self.watch_folder.text().strip() or not folder.is_dir():
            problem = "Choose an existing folder to watch."
        if problem:
            self.status.setText(problem)
            self.watch.blockSignals(True)
            self.watch.setChecked(False)
            self.watch.blockSignals(False)
            return
        self._start("watch", self.watch_arguments(folder), f"Starting to watch {folder}…")

    def stop(self) -> None:
        """Stop after the current image; waiting inputs are dropped."""
        if self.runner.running():
            self.pending.clear()
            self.stopping = True
            self.runner.send("stop")
            self.status.setText(self.status.text() + " · stopping…")
            self._update_buttons()

    def shutdown(self, grace_ms: int = 15000) -> str:
        """Stop a running job and wait for it (the window is closing).

        A worker that has not stopped within ``grace_ms`` is killed; the returned
        message says so ("" when it stopped by itself).
        """
        self.pending.clear()
        message = ""
        if self.runner.running() and not self.runner.stop_and_wait(grace_ms):
            message = (f"The {self.mode} worker did not stop within {grace_ms // 1000} s and "
                       "was ended; finished files are kept, the rest were not written.")
        self._preview_pool.waitForDone(3000)
        return message

    # -- events --------------------------------------------------------------------
    def _events(self, events: list[dict[str, Any]]) -> None:
        results: list[Result] = []
        progress = None
        for e in events:
            kind = e.get("event")
            if kind == "file":
                code = e.get("code")
                results.append(Result(str(e.get("input", "")), e.get("output"),
                                      str(e.get("status", "failed")),
                                      APP_REASONS.get(str(code), e.get("reason")), code))
            elif kind == "progress":
                progress = e
            elif kind == "started" and self.mode == "watch":
                self.status.setText(f"Watching {e.get('watching', '')} on "
                                    f"{e.get('device', '?')}: new images are translated "
                                    "as they arrive.")
            elif kind == "started":
                total = int(e.get("total") or 0)
                self.bar.setRange(0, max(total, 1))
                self.bar.setValue(0)
                self.status.setText(f"Translating {total:,} input(s) on "
                                    f"{e.get('device', '?')}…")
            elif kind == "warning":
                self.status.setToolTip(str(e.get("message", "")))
        self.results.extend(results)
        if results:
            self.table.scrollToBottom()
        last = next((r for r in reversed(results) if r.status == "translated" and r.output),
                    None)
        if last is not None:
            self._request_preview(last.input, str(last.output))
        if progress is not None:
            self._show_progress(progress)

    def _show_progress(self, e: dict[str, Any]) -> None:
        done, total = int(e.get("done") or 0), int(e.get("total") or 0)
        if self.mode == "watch":  # no end: the bar stays busy, the line counts
            parts = [f"Watching: {done:,} image(s) so far"]
        else:
            self.bar.setRange(0, max(total, 1))
            self.bar.setValue(min(done, max(total, 1)))
            parts = [f"{done:,} / {total:,}"]
        if e.get("images_per_s") is not None:
            parts.append(f"{float(e['images_per_s']):.1f} images/s")
        if self.mode != "watch":
            parts.append(f"ETA {format_duration(e.get('eta_s'))}")
        counts = self.results.counts()
        parts.append(f"{counts['translated']} translated, {counts['skipped']} skipped, "
                     f"{counts['failed']} failed")
        if self.stopping:
            parts.append("stopping…")
        self.status.setText(" · ".join(parts))

    def _ended(self, exit_code: int, crashed: bool, event: dict[str, Any] | None) -> None:
        kind = (event or {}).get("event")
        counts = self.results.counts()
        summary = (f"{counts['translated']} translated, {counts['skipped']} skipped, "
                   f"{counts['failed']} failed")
        self.bar.setRange(0, 1)
        if kind == "finished":
            self.bar.setValue(1)
            seconds = (event or {}).get("seconds")
            took = ""
            if isinstance(seconds, (int, float)):
                took = f" in {seconds:.1f} s" if seconds < 60 else f" in {format_duration(seconds)}"
            self.status.setText(f"Done{took}: {summary}.")
            self.job_ended.emit(counts["failed"] == 0, "Conversion finished", summary)
        elif kind == "stopped" and self.mode == "watch":
            self.status.setText(f"Stopped watching: {summary}.")
            self.job_ended.emit(counts["failed"] == 0, "Watching stopped", summary)
        elif kind == "stopped":
            self.status.setText(f"Stopped: {summary}.")
            self.job_ended.emit(True, "Conversion stopped", summary)
        else:
            reason = describe_end(exit_code, crashed, event)
            log = "\n".join(list(self.runner.log_tail)[-6:])
            self.status.setText(f"<b style='color:#d33'>The translator failed.</b> "
                                f"{reason.replace(chr(10), '<br>')}")
            self.status.setToolTip(log)
            self.job_ended.emit(False, "Conversion failed", reason.splitlines()[0])
        if self.watch.isChecked():  # the watch ended (stopped, or it failed)
            self.watch.blockSignals(True)
            self.watch.setChecked(False)
            self.watch.blockSignals(False)
        problem = next((i for i, r in enumerate(self.results.results)
                        if r.status != "translated"), None)
        if problem is not None:  # show the first file that needs attention
            self.table.selectRow(problem)
            self.table.scrollTo(self.results.index(problem, 0))
        start_next = bool(self.pending) and not self.stopping
        self.stopping = False
        self._update_buttons()
        if start_next:
            self._start_next()

    # -- the before/after preview, decoded off the UI thread ---------------------------
    def _request_preview(self, before: str, after: str) -> None:
        if self._preview_busy:
            self._preview_next = (before, after)  # only the newest one is worth showing
            return
        self._preview_busy = True
        self._preview_pool.start(_PreviewJob(before, after, self._preview_signals))

    def _preview_loaded(self, loaded: tuple[str, str, QImage | None, QImage | None]) -> None:
        self._preview_busy = False
        before_path, after_path, before, after = loaded
        if before is not None and after is not None:
            self.preview.show_pair(before, after, Path(before_path).name,
                                   Path(after_path).name)
        if self._preview_next is not None:
            before_path, after_path = self._preview_next
            self._preview_next = None
            self._request_preview(before_path, after_path)

    def shown_preview(self) -> tuple[str, str] | None:
        """The (before, after) captions on screen; None before the first translation."""
        if self.preview.pixmaps is None:
            return None
        return self.preview.before_caption.text(), self.preview.after_caption.text()

    def _update_buttons(self) -> None:
        busy = self.runner.running()
        watching = busy and self.mode == "watch"
        self.stop_button.setEnabled(busy and not self.stopping)
        self.setup.setEnabled(not busy)
        self.watch.setEnabled((not busy or watching) and not self.stopping)
        self.watch_folder.setEnabled(not busy)
        self.drop_area.setEnabled(self.model_path() is not None and not watching)
        self.drop_area.label.setText(
            "Watching a folder: images put there are translated as they arrive"
            if watching else "Drop images or folders here to translate them")
