"""The Training page: architectures and hyper-parameters, a run in a worker, live plots.

Start runs ``python -m cyclestudio train ... --events`` through JobRunner; this
process never imports torch. A run folder is the source of truth: reopening a run
replots metrics.jsonl and shows its samples.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cyclestudio.gui.datasets_page import domain_files
from cyclestudio.gui.jobs import JobRunner, describe_end
from cyclestudio.gui.loss_plot import LossPlot
from cyclestudio.gui.option_form import OptionForm
from cyclestudio.gui.registry import Registry
from cyclestudio.gui.samples import SamplePreview
from cyclestudio.gui.settings import Settings
from cyclestudio.project import Project

# How long Quit waits for a run to stop (it finishes its step and saves a checkpoint)
# before ending the worker: a paper-size CPU step plus a checkpoint takes seconds.
STOP_GRACE_MS = 60_000

# The configuration `cyclestudio demo` prints: learns in minutes on a laptop CPU.
FAST_CPU: dict[str, Any] = {
    "generator": "resnet_6blocks",
    "generator_options": {"width": 16, "upsample": "resize"},
    "discriminator": "patchgan",
    "discriminator_options": {"width": 32},
    "size": 64,
}
CPU_NOTE = (
    "Training will run on the CPU. The paper's full-size networks take seconds per "
    "image here (ResNet-9 at 256 px: about 0.3 images/s on two cores); the fast "
    "settings run about 8 times faster.")
FAST_CPU_TIP = ("ResNet with 6 blocks at width 16 and resize upsampling, PatchGAN at "
                "width 32, crops of at most 64 px")

PREPROCESS = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
GAN_LOSSES = ("lsgan", "vanilla", "hinge", "wgangp")
LR_POLICIES = ("linear", "cosine", "step")


def format_duration(seconds: float | None) -> str:
    """1:02:03 or 02:03; "?" when unknown."""
    if seconds is None:
        return "?"
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _spin(low: int, high: int, value: int, tip: str) -> QSpinBox:
    w = QSpinBox()
    w.setRange(low, high)
    w.setValue(value)
    w.setToolTip(tip)
    return w


def _dspin(low: float, high: float, value: float, decimals: int, step: float, tip: str):
    w = QDoubleSpinBox()
    w.setDecimals(decimals)
    w.setRange(low, high)
    w.setSingleStep(step)
    w.setValue(value)
    w.setToolTip(tip)
    return w


def _combo(items: tuple[str, ...], value: str, tip: str) -> QComboBox:
    w = QComboBox()
    w.addItems(list(items))
    w.setCurrentText(value)
    w.setToolTip(tip)
    return w


class HyperParameters(QWidget):
    """The training hyper-parameters, with the CycleGAN paper's defaults."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.size = _spin(8, 4096, 256, "Training crop size in pixels (--size)")
        self.load_size = _spin(8, 8192, 286, "Images are resized to this before cropping")
        self.preprocess = _combo(PREPROCESS, "resize_and_crop", "How images are prepared")
        self.flip = QCheckBox("random horizontal flips")
        self.flip.setChecked(True)
        self.batch = _spin(1, 256, 1, "Images per step; the paper uses 1")
        self.epochs = _spin(1, 100000, 200, "Epochs in total (the paper: 200)")
        self.decay = _spin(0, 100000, 100, "The learning rate decays over the last N epochs")
        self.iterations = _spin(0, 10**9, 0, "Stop after this many iterations in total "
                                "(0: run all the epochs)")
        self.iterations.setSpecialValueText("by epochs")
        self.lr = _dspin(1e-7, 1.0, 0.0002, 6, 0.0001, "Generator learning rate")
        self.lr_d = _dspin(1e-7, 1.0, 0.0002, 6, 0.0001, "Discriminator learning rate")
        self.beta1 = _dspin(0.0, 0.999, 0.5, 3, 0.05, "Adam β1")
        self.gan_loss = _combo(GAN_LOSSES, "lsgan", "The adversarial loss (paper: lsgan)")
        self.lambda_cycle = _dspin(0.0, 1000.0, 10.0, 2, 1.0, "Weight of the cycle loss")
        self.lambda_identity = _dspin(0.0, 100.0, 0.5, 2, 0.1,
                                      "Identity loss, relative to the cycle weight")
        self.pool = _spin(0, 10000, 50, "Past fakes the discriminators see (image pool)")
        self.lr_policy = _combo(LR_POLICIES, "linear", "How the learning rate decays")
        self.seed = _spin(0, 2**31 - 1, 0, "Random seed")
        self.workers = _spin(0, 64, 2, "Data-loading worker processes")
        self.log_every = _spin(1, 100000, 10, "Log the losses every N iterations")
        self.sample_every = _spin(1, 10**7, 500, "Save a sample grid every N iterations")
        self.checkpoint_every = _spin(1, 10**7, 1000, "Save a checkpoint every N iterations")
        # Until the user sets a size, it follows the images: cropping 256 px out of
        # 64 px images only upsamples them and makes every step 16 times slower.
        self.fitted_note = QLabel("")
        self.fitted_note.setWordWrap(True)
        self.fitted_note.setStyleSheet("color: gray")
        self._fitting = False
        self.user_sized = False
        self.smallest_side = 0  # the project's shortest image side, once known
        self.size.valueChanged.connect(self._size_edited)
        self.load_size.valueChanged.connect(self._size_edited)
        form = self._form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        for label, widget in [
            ("crop size", self.size), ("load size", self.load_size), ("", self.fitted_note),
            ("preprocess", self.preprocess), ("", self.flip), ("batch size", self.batch),
            ("epochs", self.epochs), ("decay epochs", self.decay),
            ("iterations", self.iterations), ("learning rate G", self.lr),
            ("learning rate D", self.lr_d), ("β1", self.beta1), ("GAN loss", self.gan_loss),
            ("λ cycle", self.lambda_cycle), ("λ identity", self.lambda_identity),
            ("pool size", self.pool), ("lr policy", self.lr_policy), ("seed", self.seed),
            ("loader workers", self.workers), ("log every", self.log_every),
            ("sample every", self.sample_every), ("checkpoint every", self.checkpoint_every),
        ]:
            form.addRow(label, widget)
        form.setRowVisible(self.fitted_note, False)

    def _note(self, text: str) -> None:
        self.fitted_note.setText(text)
        self._form.setRowVisible(self.fitted_note, bool(text))

    def _size_edited(self) -> None:
        if not self._fitting:
            self.user_sized = True
            self._note("")

    def refit(self) -> None:
        """Fit the crop size to the images again, forgetting any run's or user's size."""
        self.user_sized = False
        if self.smallest_side:
            self.fit_to_images(self.smallest_side)

    def fit_to_images(self, side: int) -> None:
        """Crop at most the shortest image side (a multiple of 4), unless the user chose."""
        self.smallest_side = side
        if self.user_sized or side < 16:
            return
        size = max(16, min(256, side // 4 * 4))
        self._fitting = True
        try:
            self.size.setValue(size)
            self.load_size.setValue(max(size, round(size * 286 / 256)))
        finally:
            self._fitting = False
        self._note(
            f"Fitted to your images (shortest side {side} px); the paper crops 256 of 286."
            if size < 256 else "")

    def arguments(self) -> list[str]:
        """The `cyclestudio train` flags for these values."""
        args = [
            "--size", str(self.size.value()), "--load-size", str(self.load_size.value()),
            "--preprocess", self.preprocess.currentText(),
            "--batch-size", str(self.batch.value()), "--epochs", str(self.epochs.value()),
            "--decay-epochs", str(self.decay.value()),
            "--lr", repr(self.lr.value()), "--lr-d", repr(self.lr_d.value()),
            "--beta1", repr(self.beta1.value()), "--gan-loss", self.gan_loss.currentText(),
            "--lambda-cycle", repr(self.lambda_cycle.value()),
            "--lambda-identity", repr(self.lambda_identity.value()),
            "--pool-size", str(self.pool.value()), "--lr-policy", self.lr_policy.currentText(),
            "--seed", str(self.seed.value()), "--workers", str(self.workers.value()),
            "--log-every", str(self.log_every.value()),
            "--sample-every", str(self.sample_every.value()),
            "--checkpoint-every", str(self.checkpoint_every.value()),
        ]
        if not self.flip.isChecked():
            args.append("--no-flip")
        if self.iterations.value():
            args += ["--iterations", str(self.iterations.value())]
        return args

    def set_from_config(self, config: dict[str, Any]) -> None:
        """Show a run's config.json values."""
        data, optim, run = config.get("data", {}), config.get("optim", {}), config.get("run", {})
        setters: list[tuple[Any, Any]] = [
            (self.size, data.get("size")), (self.load_size, data.get("load_size")),
            (self.batch, optim.get("batch_size")), (self.epochs, optim.get("epochs")),
            (self.decay, optim.get("decay_epochs")), (self.iterations, run.get("iterations")),
            (self.lr, optim.get("lr_g")), (self.lr_d, optim.get("lr_d")),
            (self.beta1, optim.get("beta1")), (self.lambda_cycle, optim.get("lambda_cycle")),
            (self.lambda_identity, optim.get("lambda_identity")),
            (self.pool, optim.get("pool_size")), (self.seed, run.get("seed")),
            (self.workers, data.get("workers")), (self.log_every, run.get("log_every")),
            (self.sample_every, run.get("sample_every")),
            (self.checkpoint_every, run.get("checkpoint_every")),
        ]
        self._fitting = True
        try:
            for widget, value in setters:
                if value is not None:
                    widget.setValue(value)
        finally:
            self._fitting = False
        self.user_sized = True  # a run's own sizes are kept
        self._note("")
        for combo, value in [(self.preprocess, data.get("preprocess")),
                             (self.gan_loss, optim.get("gan_loss")),
                             (self.lr_policy, optim.get("lr_policy"))]:
            if value:
                combo.setCurrentText(str(value))
        if "flip" in data:
            self.flip.setChecked(bool(data["flip"]))


class ArchitecturePicker(QWidget):
    """A combo box of a plugin kind's architectures and the chosen one's option form."""

    def __init__(self, kind: str, default: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind, self.default = kind, default
        self.specs: list[dict[str, Any]] = []
        self.combo = QComboBox()
        self.combo.currentIndexChanged.connect(self._chosen)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color: gray")
        self.form = OptionForm()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo)
        layout.addWidget(self.description)
        layout.addWidget(self.form)
        self.combo.addItem("loading plugins…")
        self.combo.setEnabled(False)

    def set_specs(self, specs: list[dict[str, Any]]) -> None:
        """Offer these architectures (keeping the current choice and options if possible)."""
        keep_name = self.name() if self.specs else self.default
        keep_values = self.form.values() if self.specs else {}
        self.specs = list(specs)
        self.combo.blockSignals(True)
        self.combo.clear()
        for spec in self.specs:
            self.combo.addItem(spec.get("title") or spec["name"], spec["name"])
            self.combo.setItemData(self.combo.count() - 1, spec.get("description", ""),
                                   Qt.ItemDataRole.ToolTipRole)
        self.combo.setEnabled(bool(self.specs))
        i = self.combo.findData(keep_name)
        self.combo.setCurrentIndex(max(i, 0))
        self.combo.blockSignals(False)
        self._chosen(self.combo.currentIndex())
        if keep_values and self.name() == keep_name:
            self.form.set_values(keep_values)

    def select(self, name: str, options: dict[str, Any]) -> None:
        """Choose an architecture by name and fill in its options."""
        i = self.combo.findData(name)
        if i >= 0:
            self.combo.setCurrentIndex(i)
            self.form.set_values(options)

    def name(self) -> str:
        """The chosen architecture's name."""
        return str(self.combo.currentData() or "")

    def _chosen(self, i: int) -> None:
        spec = self.specs[i] if 0 <= i < len(self.specs) else {}
        self.description.setText(spec.get("description", ""))
        multiple = spec.get("size_multiple")
        if isinstance(multiple, int) and multiple > 1:
            self.description.setText(
                f"{spec.get('description', '')} Image sides: multiples of {multiple}.")
        self.form.set_options(spec.get("options", []))


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

    def show_error(self, reason: str, log: list[str], can_resume: bool) -> None:
        """Show why the run ended."""
        self.reason.setText(f"<b style='color:#d33'>The run ended abnormally.</b><br>"
                            f"{reason.replace(chr(10), '<br>')}")
        self.log.setPlainText("\n".join(log) or "(the worker wrote no log)")
        self.log.verticalScrollBar().setValue(self.log.verticalScrollBar().maximum())
        self.resume.setVisible(can_resume)
        self.show()


class TrainingPage(QWidget):
    """Set up a run, start it in a worker, and watch it learn."""

    # (succeeded, title, message): the main window turns it into a notification
    run_ended = Signal(bool, str, str)

    def __init__(self, registry: Registry, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.registry, self.settings = registry, settings
        self.project: Project | None = None
        self.run_dir: Path | None = None
        self.state = "idle"  # idle, starting, running, paused, stopping
        self.last_progress: dict[str, Any] = {}
        self.runner = JobRunner(self)
        self.runner.events.connect(self._events)
        self.runner.ended.connect(self._ended)

        # -- left: the setup -------------------------------------------------------
        self.runs = QComboBox()
        self.runs.setToolTip("A new run, or one of the project's runs to watch or resume")
        self.runs.currentIndexChanged.connect(self._run_chosen)
        self.generator = ArchitecturePicker("generators", "resnet_9blocks")
        self.discriminator = ArchitecturePicker("discriminators", "patchgan")
        self.hyper = HyperParameters()
        self.device = QComboBox()
        self.device.setToolTip("Where training runs; auto picks a GPU when there is one")
        self.device.addItem("auto", "auto")
        self.device.currentIndexChanged.connect(self._device_chosen)
        self.generator.combo.currentIndexChanged.connect(self._device_chosen)
        self.plugin_errors = QLabel()
        self.plugin_errors.setWordWrap(True)
        self.plugin_errors.setStyleSheet("color: #d33")
        self.plugin_errors.hide()
        # On a CPU the paper's networks crawl: say so where the user starts, and offer
        # the small configuration that still learns.
        self.cpu_note = QFrame()
        self.cpu_note.setObjectName("cpuNote")
        self.cpu_note.setStyleSheet(
            "#cpuNote { background: #fff4d6; border: 1px solid #e0c060; border-radius: 3px; }"
            " #cpuNote QLabel { color: #5c4400; }")
        note_text = QLabel(CPU_NOTE)
        note_text.setWordWrap(True)
        self.fast_button = QPushButton("Use the fast CPU settings")
        self.fast_button.setToolTip(FAST_CPU_TIP)
        self.fast_button.clicked.connect(self.use_fast_cpu_settings)
        note_layout = QVBoxLayout(self.cpu_note)
        note_layout.addWidget(note_text)
        note_layout.addWidget(self.fast_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.cpu_note.hide()

        setup = QWidget()
        setup_layout = QVBoxLayout(setup)
        run_box = QGroupBox("Run")
        QVBoxLayout(run_box).addWidget(self.runs)
        gen_box = QGroupBox("Generator")
        QVBoxLayout(gen_box).addWidget(self.generator)
        dis_box = QGroupBox("Discriminator")
        QVBoxLayout(dis_box).addWidget(self.discriminator)
        hyper_box = QGroupBox("Hyper-parameters (the paper's defaults)")
        QVBoxLayout(hyper_box).addWidget(self.hyper)
        device_box = QGroupBox("Device")
        QVBoxLayout(device_box).addWidget(self.device)
        for w in (run_box, self.plugin_errors, self.cpu_note, gen_box, dis_box, hyper_box,
                  device_box):
            setup_layout.addWidget(w)
        setup_layout.addStretch(1)
        self.setup = setup
        scroll = QScrollArea()
        scroll.setWidget(setup)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(330)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        # -- right: controls, progress, plot, samples ----------------------------------
        self.start_button = QPushButton("Start training")
        self.start_button.clicked.connect(self.start)
        # One button for "carry on": Pause while running, Continue while paused, and
        # Resume run for a stopped or crashed run: it always says what it will do.
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop and save a checkpoint; the run can be resumed")
        self.stop_button.clicked.connect(self.stop)
        self.sample_button = QPushButton("Sample now")
        self.sample_button.clicked.connect(lambda: self.runner.send("sample"))
        controls = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.stop_button, self.sample_button):
            controls.addWidget(b)
        controls.addStretch(1)
        self.status = RunStatus()
        self.error_panel = ErrorPanel()
        self.error_panel.resume.clicked.connect(self.resume_run)
        self.plot = LossPlot()
        self.preview = SamplePreview()
        views = QSplitter(Qt.Orientation.Vertical)
        views.addWidget(self.plot)
        views.addWidget(self.preview)
        views.setStretchFactor(0, 3)
        views.setStretchFactor(1, 2)
        views.setSizes([420, 300])
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addLayout(controls)
        right_layout.addWidget(self.status)
        # The run's own advice (a collapsing discriminator, mode collapse, a schedule
        # stretched to reach --iterations): visible, not buried in a tooltip.
        self.warnings = QLabel()
        self.warnings.setWordWrap(True)
        self.warnings.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warnings.setStyleSheet(
            "QLabel { background: #fff4d6; color: #5c4400; border: 1px solid #e0c060;"
            " border-radius: 3px; padding: 4px; }")
        self.warnings.hide()
        self.warning_lines: list[str] = []
        right_layout.addWidget(self.warnings)
        right_layout.addWidget(self.error_panel)
        right_layout.addWidget(views, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([360, 900])
        QVBoxLayout(self).addWidget(splitter)

        registry.plugins_changed.connect(self._plugins_changed)
        registry.devices_changed.connect(self._devices_changed)
        self._plugins_changed()
        self._devices_changed()
        self._update_buttons()

    # -- registry ----------------------------------------------------------------
    def _plugins_changed(self) -> None:
        if self.registry.plugins is None:
            return
        self.generator.set_specs(self.registry.architectures("generators"))
        self.discriminator.set_specs(self.registry.architectures("discriminators"))
        errors = self.registry.errors()
        self.plugin_errors.setVisible(bool(errors))
        self.plugin_errors.setText("\n".join(
            f"Plugin {e.get('source')}: {e.get('message')}" for e in errors))
        self._update_buttons()

    def _devices_changed(self) -> None:
        devices = (self.registry.devices or {}).get("devices", [])
        current = self.device.currentData() or self.settings.default_device
        self.device.clear()
        self.device.addItem("auto (best available)", "auto")
        for d in devices:
            memory = d.get("memory_bytes")
            text = f"{d['id']} — {d.get('name', '')}"
            if memory:
                text += f" ({memory / 2**30:.0f} GiB)"
            self.device.addItem(text, d["id"])
        i = self.device.findData(current)
        self.device.setCurrentIndex(max(i, 0))
        if not any(str(d.get("id", "")).startswith(("cuda", "mps")) for d in devices):
            self.device.setItemText(0, "auto (the CPU here)")
        self._device_chosen()

    def on_cpu(self) -> bool:
        """True when the chosen device is (or auto will pick) the CPU."""
        chosen = str(self.device.currentData() or "auto")
        if chosen != "auto":
            return chosen == "cpu"
        devices = (self.registry.devices or {}).get("devices")
        if devices is None:
            return False  # not known yet
        return not any(str(d.get("id", "")).startswith(("cuda", "mps")) for d in devices)

    def _device_chosen(self, _: int = 0) -> None:
        self.cpu_note.setVisible(self.on_cpu() and not self.fast_settings_in_use())

    def fast_settings_in_use(self) -> bool:
        """True when the page already holds the fast CPU configuration."""
        gen = self.generator.form.values() if self.generator.specs else {}
        return (self.generator.name() == FAST_CPU["generator"]
                and all(gen.get(k) == v for k, v in FAST_CPU["generator_options"].items()))

    def use_fast_cpu_settings(self) -> None:
        """The small configuration `cyclestudio demo` suggests: about 8× faster on a CPU."""
        self.generator.select(FAST_CPU["generator"], FAST_CPU["generator_options"])
        self.discriminator.select(FAST_CPU["discriminator"], FAST_CPU["discriminator_options"])
        side = min(FAST_CPU["size"], self.hyper.size.value())
        self.hyper.size.setValue(side)
        self.hyper.load_size.setValue(max(side, round(side * 72 / 64)))
        self._device_chosen()

    # -- project and runs --------------------------------------------------------
    def set_project(self, project: Project | None) -> None:
        """Show a project's runs (the latest one selected)."""
        self.project = project
        self.hyper.user_sized = False
        self.refresh_runs(select_last=True)

    def refresh_runs(self, select_last: bool = False, select: Path | None = None,
                     show: bool = True) -> None:
        """Refill the run list from project.json (``show``: also display the chosen run)."""
        self.runs.blockSignals(True)
        self.runs.clear()
        self.runs.addItem("New run", None)
        if self.project is not None:
            for rel in reversed(self.project.runs):
                path = self.project.resolve(rel)
                live = self.state != "idle" and path == self.run_dir
                state = "running" if live else self._run_state(path)
                self.runs.addItem(f"{path.name} — {state}", str(path))
        index = 0
        if select is not None:
            index = max(self.runs.findData(str(select)), 0)
        elif select_last and self.runs.count() > 1:
            index = 1
        self.runs.setCurrentIndex(index)
        self.runs.blockSignals(False)
        if show:
            self._run_chosen(index)
        else:
            self._update_buttons()

    @staticmethod
    def _run_state(run: Path) -> str:
        if (run / "model.csmodel").exists():
            return "finished"
        if (run / "checkpoints" / "latest.pt").exists():
            return "can resume"
        return "no checkpoint"

    def selected_run(self) -> Path | None:
        """The run folder chosen in the run list (None: a new run)."""
        data = self.runs.currentData()
        return Path(data) if data else None

    def _run_chosen(self, _: int) -> None:
        if self.state != "idle":
            return
        run = self.selected_run()
        self.error_panel.hide()
        if run is None:
            self.run_dir = None
            # A new run starts from sizes that fit the images, not the last run shown.
            self.hyper.refit()
            self.plot.clear()
            self.preview.clear()
            self.status.line.setText("Set up a run and press Start training.")
            self.status.bar.setValue(0)
        else:
            self.show_run(run)
        self._update_buttons()

    def show_run(self, run: Path) -> None:
        """Show a run folder: its settings, losses and samples."""
        self.run_dir = run
        try:
            config = json.loads((run / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = {}
        if config:
            self.hyper.set_from_config(config)
            gen, dis = config.get("generator", {}), config.get("discriminator", {})
            self.generator.select(gen.get("name", ""), gen.get("options", {}))
            self.discriminator.select(dis.get("name", ""), dis.get("options", {}))
        self.plot.load(run / "metrics.jsonl")
        self.preview.load(run)
        self.status.device = config.get("run", {}).get("device", "")
        self.status.bar.setValue(0)
        self.status.line.setText(f"{run.name}: {self._run_state(run)}")
        self.last_progress = {}

    # -- starting and controlling ------------------------------------------------------
    def new_run_folder(self) -> Path:
        """A fresh run folder under the output folder (or the project's runs/)."""
        assert self.project is not None
        root = Path(self.settings.output_folder) if self.settings.output_folder else (
            self.project.folder / "runs")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run = root / f"run-{stamp}"
        n = 2
        while run.exists():
            run = root / f"run-{stamp}-{n}"
            n += 1
        return run

    def train_arguments(self, run: Path) -> list[str]:
        """The full `cyclestudio train` command line for a new run (without the program)."""
        assert self.project is not None
        args = ["train"]
        for key, flag in (("A", "--a"), ("B", "--b")):
            domain = self.project.domain(key)
            if domain.exclude:
                # Some images were removed in the app: name the rest one by one.
                sources = [str(p) for p in domain_files(self.project, domain)]
            else:
                sources = [str(self.project.resolve(p)) for p in domain.paths]
            for source in sources:
                args += [flag, source]
        args += ["--a-name", self.project.a.name, "--b-name", self.project.b.name]
        args += ["--out", str(run)]
        args += ["--generator", self.generator.name(),
                 "--discriminator", self.discriminator.name()]
        for option in self.generator.form.changed_options():
            args += ["--generator-option", option]
        for option in self.discriminator.form.changed_options():
            args += ["--discriminator-option", option]
        args += self.hyper.arguments()
        args += ["--device", str(self.device.currentData() or "auto"), "--events"]
        return args

    def start(self) -> None:
        """Start a new run with the settings on the page."""
        if self.project is None or self.runner.running():
            return
        missing = [k for k in ("A", "B") if not self.project.domain(k).paths]
        if missing:
            self.status.line.setText(
                f"Domain {' and '.join(missing)} has no images: add some on the Datasets page.")
            return
        if not self.generator.name() or not self.discriminator.name():
            self.status.line.setText("The plugin list is still loading.")
            return
        run = self.new_run_folder()
        self._launch(self.train_arguments(run), run)
        self.project.add_run(run)
        self.project.save()
        self.refresh_runs(select=run)

    def resume_run(self, run: Path | None = None) -> None:
        """Continue a stopped or crashed run from its last checkpoint."""
        run = run or self.run_dir or self.selected_run()
        if run is None or self.runner.running():
            return
        args = ["train", "--resume", str(run), "--events"]
        iterations = self.hyper.iterations.value()
        if iterations and iterations > int(self.last_progress.get("iteration") or 0):
            args[3:3] = ["--iterations", str(iterations)]
        self._launch(args, run)

    def _launch(self, args: list[str], run: Path) -> None:
        self.error_panel.hide()
        self.warning_lines = []
        self.warnings.hide()
        self.run_dir = run
        self.plot.clear()
        self.preview.clear()
        if (run / "metrics.jsonl").exists():
            self.plot.load(run / "metrics.jsonl")
            self.preview.load(run)
        self.last_progress = {}
        self.state = "starting"
        self.status.bar.setRange(0, 0)  # busy until the first event
        self.status.line.setText("Starting the worker…")
        self.runner.start(args)
        self._update_buttons()

    def toggle_pause(self) -> None:
        """Pause a running run, continue a paused one, or resume the chosen stopped run."""
        if self.state == "idle":
            self.resume_run()
        elif self.state == "running":
            self.runner.send("pause")
            self.pause_button.setEnabled(False)
        elif self.state == "paused":
            self.runner.send("resume")
            self.pause_button.setEnabled(False)

    def stop(self) -> None:
        """Ask the run to stop; it saves a checkpoint first."""
        if self.runner.running():
            self.runner.send("stop")
            self.state = "stopping"
            self.status.line.setText(self.status.line.text() + " · stopping…")
            self._update_buttons()

    def shutdown(self, grace_ms: int = STOP_GRACE_MS) -> str:
        """Stop a running job and wait for its checkpoint (the window is closing).

        A worker that has not stopped within ``grace_ms`` is killed with its own
        processes; the returned message says so ("" when it stopped by itself).
        """
        if not self.runner.running():
            return ""
        run = self.run_dir.name if self.run_dir else "the run"
        if self.runner.stop_and_wait(grace_ms):
            return ""
        return (f"The training worker of {run} did not stop within {grace_ms // 1000} s "
                "and was ended. Its last checkpoint is kept: Resume continues from it.")

    # -- events ----------------------------------------------------------------
    def _events(self, events: list[dict[str, Any]]) -> None:
        progress = None
        steps: list[tuple[float, dict[str, Any]]] = []
        for e in events:
            kind = e.get("event")
            if kind == "progress":
                steps.append((e.get("iteration", 0), e.get("losses") or {}))
                progress = e
            elif kind == "started":
                if e.get("resumed") and self.run_dir is not None:
                    # The worker has dropped the metrics logged after its checkpoint;
                    # replot so the curves do not run back over them (a false kink).
                    self.plot.load(self.run_dir / "metrics.jsonl")
                self.state = "running"
                self.status.device = str(e.get("device", ""))
                progress = {**e, "eta_s": None}
                skipped = e.get("skipped") or []
                if skipped:
                    self.status.line.setToolTip("Skipped unreadable files:\n" + "\n".join(
                        f"{s.get('path')}: {s.get('reason')}" for s in skipped[:30]))
                self._update_buttons()
            elif kind == "sample" and self.run_dir is not None:
                self.preview.add(self.run_dir / str(e.get("path", "")))
            elif kind == "paused":
                self.state = "paused"
                self._update_buttons()
            elif kind == "resumed":
                self.state = "running"
                self._update_buttons()
            elif kind == "warning":
                self.add_warning(str(e.get("message", "")))
        if steps:
            self.plot.add_many(steps)
        if progress is not None:
            self.last_progress = progress
        if self.last_progress and (progress is not None or self.state == "paused"):
            self.status.show_progress(self.last_progress,
                                      "paused" if self.state == "paused" else "")

    def add_warning(self, message: str) -> None:
        """Show one of the run's warnings (the newest three stay in view)."""
        if not message or message.startswith("skipping "):  # skipped files are listed apart
            return
        self.warning_lines = [*self.warning_lines, message][-3:]
        self.warnings.setText("\n".join(f"⚠ {line}" for line in self.warning_lines))
        self.warnings.setToolTip("\n\n".join(self.warning_lines))
        self.warnings.show()

    def _ended(self, exit_code: int, crashed: bool, event: dict[str, Any] | None) -> None:
        run = self.run_dir
        self.state = "idle"
        name = run.name if run else "the run"
        kind = (event or {}).get("event")
        self.status.bar.setRange(0, 1)
        if kind == "finished" and exit_code == 0:
            self.status.bar.setValue(1)
            self.status.line.setText(f"Finished at iteration {event.get('iteration'):,}. "
                                     f"Model: {event.get('model') or 'not exported'}")
            self.run_ended.emit(True, "Training finished", f"{name} finished.")
        elif kind == "stopped" and exit_code == 0:
            self.status.line.setText(
                f"Stopped at iteration {event.get('iteration'):,}; checkpoint saved. "
                "Resume run continues from here.")
            self.run_ended.emit(True, "Training stopped", f"{name} stopped; it can be resumed.")
        else:
            reason = describe_end(exit_code, crashed, event)
            can_resume = run is not None and (run / "checkpoints" / "latest.pt").exists()
            self.error_panel.show_error(reason, list(self.runner.log_tail), can_resume)
            self.status.line.setText("The run failed.")
            self.run_ended.emit(False, "Training failed", reason.splitlines()[0])
        self.refresh_runs(select=run, show=False)

    def _update_buttons(self) -> None:
        busy = self.state != "idle"
        run = self.selected_run()
        self.start_button.setEnabled(not busy and self.project is not None
                                     and self.generator.name() != "")
        resumable = (not busy and run is not None
                     and (run / "checkpoints" / "latest.pt").exists()
                     and not (run / "model.csmodel").exists())
        if self.state == "paused":
            text, tip = "Continue", "Continue the paused run"
        elif self.state == "idle" and resumable:
            text, tip = "Resume run", "Continue this run from its last checkpoint"
        else:
            text, tip = "Pause", "Pause (frees the GPU memory); press again to continue"
        self.pause_button.setText(text)
        self.pause_button.setToolTip(tip)
        self.pause_button.setEnabled(self.state in ("running", "paused") or resumable)
        self.stop_button.setEnabled(self.state in ("starting", "running", "paused"))
        self.sample_button.setEnabled(self.state == "running")
        self.setup.setEnabled(not busy)
        self.runs.setEnabled(not busy)
