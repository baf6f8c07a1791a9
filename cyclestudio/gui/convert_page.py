"""The Convert page: translate images in bulk with a trained model.

Dropping files or folders on the page (or picking them) runs
``python -m cyclestudio translate MODEL INPUT... --out DIR --direction D --events``
through JobRunner, so the window stays torch-free and a crash in the translator takes
nothing else with it. Inputs dropped while a job runs wait for it and go next.
"Watch a folder" runs ``cyclestudio watch MODEL --in DIR --out OUT ... --events`` the
same way: each image that lands in DIR is translated and listed until it is turned off,
with counters of the files done, failed and waiting. A watch that was on when the app
closed is offered again at the next start.

Selecting a row shows that file: a translated one in the split before/after view, a
failed one with its reason; "Show in folder" opens the file manager on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cyclestudio import options, protocol
from cyclestudio.core.imagescan import is_image_name
from cyclestudio.gui.before_after import BeforeAfter
from cyclestudio.gui.drop_target import DropArea, pick_folder, pick_images
from cyclestudio.gui.file_manager import show_in_folder
from cyclestudio.gui.jobs import JobRunner, describe_end
from cyclestudio.gui.model_list import ModelChooser
from cyclestudio.gui.results_table import Result, ResultsModel, ResultsTable, result_from_event
from cyclestudio.gui.settings import Settings, data_dir
from cyclestudio.gui.watch_memory import ResumeWatchBanner
from cyclestudio.humanize import format_duration
from cyclestudio.project import Project


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
        self.follow = True  # the preview follows the newest file until a row is selected
        self.watch_counts: dict[str, int] = {}
        self.runner = JobRunner(self)
        self.runner.events.connect(self._events)
        self.runner.ended.connect(self._ended)

        # -- the setup -------------------------------------------------------------
        self.models = ModelChooser()
        self.models.changed.connect(self._model_chosen)
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
        form.addRow("Model", self.models)
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
        browse_watch = self.browse_watch = QPushButton("Choose…")
        browse_watch.clicked.connect(self._browse_watch)
        self.watch_row = QWidget()
        watch_layout = QHBoxLayout(self.watch_row)
        watch_layout.setContentsMargins(0, 0, 0, 0)
        watch_layout.addWidget(self.watch)
        watch_layout.addWidget(self.watch_folder, 1)
        watch_layout.addWidget(browse_watch)

        # -- dropping, progress and results ------------------------------------------------
        self.drop_area = DropArea("Drop images or folders here to translate them")
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
        self.counters = QLabel()
        self.counters.setTextFormat(Qt.TextFormat.RichText)
        self.counters.hide()
        self.results = ResultsModel(self)
        self.table = ResultsTable(self.results)
        self.table.selectionModel().currentRowChanged.connect(self._row_selected)
        self.preview = BeforeAfter()
        self.detail = QLabel("Select a file to see it here.")
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.show_button = QPushButton("Show in folder")
        self.show_button.setToolTip("Open the file manager on the selected file (a failed "
                                    "file's input, a translated file's output)")
        self.show_button.clicked.connect(self.show_selected)
        self.show_button.setEnabled(False)
        detail_row = QHBoxLayout()
        detail_row.setContentsMargins(0, 0, 0, 0)
        detail_row.addWidget(self.detail, 1)
        detail_row.addWidget(self.show_button)
        results_box = QWidget()
        results_layout = QVBoxLayout(results_box)
        results_layout.setContentsMargins(0, 0, 0, 0)
        results_layout.addWidget(self.table, 1)
        results_layout.addLayout(detail_row)
        self.resume_banner = ResumeWatchBanner(settings)
        self.resume_banner.resume.connect(self._resume)

        # Left: what to do and where it stands; the drop area takes the spare height,
        # a big target. Right: the last image before/after above the per-file results.
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(QLabel("<h2>Convert</h2>"))
        left_layout.addWidget(self.resume_banner)
        left_layout.addWidget(self.setup)
        left_layout.addWidget(self.watch_row)
        left_layout.addWidget(self.drop_area, 1)
        left_layout.addWidget(self.counters)
        left_layout.addLayout(progress_row)
        left_layout.addWidget(self.status)
        left_layout.addWidget(self.output_link)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.preview)
        right.addWidget(results_box)
        right.setSizes([480, 320])
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
        self.resume_banner.offer()

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
        self.models.refresh(self.project)

    def choose_model(self, path: Path) -> None:
        """Use a model file or run folder (added to the list if it is not there)."""
        self.models.choose(path)

    def model_path(self) -> Path | None:
        """The chosen model file or run folder."""
        return self.models.path()

    def _model_chosen(self) -> None:
        a, b = self.models.domains()
        current = self.direction.currentData() or options.default("direction",
                                                                  options.TRANSLATE_BY_NAME)
        self.direction.clear()
        directions = self.models.directions()  # an exported .onnx translates one way
        if "a2b" in directions:
            self.direction.addItem(f"A → B ({a} → {b})", "a2b")
        if "b2a" in directions:
            self.direction.addItem(f"B → A ({b} → {a})", "b2a")
        self.direction.setCurrentIndex(max(self.direction.findData(current), 0))
        self._update_buttons()

    def _browse_output(self) -> None:
        folder = pick_folder(self, "Output folder", self.output.text())
        if folder:
            self.output.setText(str(folder))

    def _format_chosen(self, _: int) -> None:
        self.quality.setEnabled(self.format.currentData() in ("jpg", "webp"))

    def _pick_files(self) -> None:
        files = pick_images(self, "Images to translate")
        if files:
            self.convert(files)

    def _pick_folder(self) -> None:
        folder = pick_folder(self, "A folder of images to translate")
        if folder:
            self.convert([folder])

    def _browse_watch(self) -> None:
        folder = pick_folder(self, "A folder to watch", self.watch_folder.text())
        if folder:
            self.watch_folder.setText(str(folder))

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
        self.follow = True
        self.watch_counts = {}
        self.counters.setVisible(mode == "watch")
        self._show_counters()
        self._show_detail(None)
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
                self.forget_watch()  # turned off on purpose: not offered again
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
        self._remember_watch(folder)

    def stop(self) -> None:
        """Stop after the current image; waiting inputs are dropped."""
        if self.mode == "watch":
            self.forget_watch()  # stopped on purpose (a closing window uses shutdown())
        if self.runner.running():
            self.pending.clear()
            self.stopping = True
            self.runner.send(protocol.STOP)
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
        self.preview.loader.wait()
        return message

    # -- events --------------------------------------------------------------------
    def _events(self, events: list[dict[str, Any]]) -> None:
        results: list[Result] = []
        progress = None
        for e in events:
            kind = e.get("event")
            if kind == "file":
                results.append(result_from_event(e))
            elif kind == "progress":
                progress = e
                if self.mode == "watch":
                    self.watch_counts = {k: int(e.get(k) or 0) for k in (
                        "translated", "skipped", "failed", "waiting")}
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
        if last is not None and self.follow:
            self.preview.request(last.input, str(last.output))
        if progress is not None:
            self._show_progress(progress)
            self._show_counters()

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
        if self.mode == "watch" and kind == "stopped":
            self.watch_counts = {k: int((event or {}).get(k) or 0) for k in (
                "translated", "skipped", "failed", "waiting")}
            self._show_counters()
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
                        if r.status == "failed"), None)
        if problem is None:
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

    # -- the selected file --------------------------------------------------------------
    def _row_selected(self, current, _previous=None) -> None:
        if not current.isValid() or current.row() >= len(self.results.results):
            self._show_detail(None)
            return
        r = self.results.results[current.row()]
        self._show_detail(r)
        if r.status == "translated" and r.output:
            self.follow = False  # the user chose a file: stay on it
            self.preview.request(r.input, str(r.output))

    def _show_detail(self, r: Result | None) -> None:
        self.show_button.setEnabled(r is not None)
        if r is None:
            self.detail.setText("Select a file to see it here.")
            return
        name = Path(r.input).name
        if r.status == "translated":
            text = f"{name} → {r.output}" + (f" ({r.reason})" if r.reason else "")
        else:
            colour = "#d33" if r.status == "failed" else "#c08a00"
            text = f"<b style='color:{colour}'>{name} {r.status}:</b> {r.reason or ''}"
            if r.moved_to:
                text += f"<br>moved to {r.moved_to}"
        self.detail.setText(text)

    def show_selected(self) -> str:
        """Open the file manager on the selected file; how it was shown ("" if not)."""
        r = self.table.selected()
        return show_in_folder(Path(r.location())) if r is not None else ""

    def _show_counters(self) -> None:
        c = self.watch_counts
        parts = [f"<b style='font-size:15pt'>{c.get('translated', 0):,}</b> done",
                 f"<b style='font-size:15pt; color:{'#d33' if c.get('failed') else 'gray'}'>"
                 f"{c.get('failed', 0):,}</b> failed",
                 f"<b style='font-size:15pt'>{c.get('waiting', 0):,}</b> waiting"]
        if c.get("skipped"):
            parts.append(f"<span style='color:gray'>({c['skipped']:,} skipped)</span>")
        self.counters.setText("&nbsp;&nbsp;&nbsp;".join(parts))

    # -- a watch that outlives the app (gui/watch_memory.py) -------------------------------
    def _remember_watch(self, folder: Path) -> None:
        self.resume_banner.remember({
            "model": str(self.model_path()), "folder": str(folder),
            "out": self.output.text().strip() or str(self.default_output()),
            "direction": str(self.direction.currentData() or "a2b"),
            "format": str(self.format.currentData()), "quality": self.quality.value(),
            "overwrite": self.overwrite.isChecked()})

    def forget_watch(self) -> None:
        """Do not offer the remembered watch again."""
        self.resume_banner.forget()

    def resume_watch(self) -> None:
        """Watch the remembered folder again, with the settings it had."""
        if self.settings.watch and not self.runner.running():
            self.resume_banner.request()

    def _resume(self, w: dict[str, Any]) -> None:
        if self.runner.running():
            return
        self.choose_model(Path(str(w["model"])))
        self.output.setText(str(w.get("out", "")))
        index = self.direction.findData(w.get("direction", "a2b"))
        self.direction.setCurrentIndex(max(index, 0))
        self.format.setCurrentIndex(max(self.format.findData(w.get("format", "same")), 0))
        self.quality.setValue(int(w.get("quality", self.quality.value())))
        self.overwrite.setChecked(bool(w.get("overwrite", False)))
        self.watch_folder.setText(str(w["folder"]))
        self.watch.setChecked(True)

    def shown_preview(self) -> tuple[str, str] | None:
        """The (before, after) captions on screen; None before the first translation."""
        return self.preview.shown()

    def _update_buttons(self) -> None:
        busy = self.runner.running()
        watching = busy and self.mode == "watch"
        self.stop_button.setEnabled(busy and not self.stopping)
        self.setup.setEnabled(not busy)
        self.watch.setEnabled((not busy or watching) and not self.stopping)
        self.watch_folder.setEnabled(not busy)
        self.browse_watch.setEnabled(not busy)
        self.drop_area.setEnabled(self.model_path() is not None and not watching)
        self.drop_area.label.setText(
            "Watching a folder: images put there are translated as they arrive"
            if watching else "Drop images or folders here to translate them")
