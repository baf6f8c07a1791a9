"""The Training page: architectures and settings, a run in a worker, live plots.

Start runs ``python -m cyclestudio train ... --events`` through JobRunner; this
process never imports torch. A run folder is the source of truth: reopening a run
replots metrics.jsonl and shows its samples. The setup on the left (which run,
networks, settings, device) is training_setup; the run's progress, warnings and
failures are run_status.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cyclestudio import protocol
from cyclestudio.gui.jobs import JobRunner, describe_end
from cyclestudio.gui.loss_plot import LossPlot
from cyclestudio.gui.registry import Registry
from cyclestudio.gui.run_status import ErrorPanel, RunStatus, WarningBanner
from cyclestudio.gui.samples import SamplePreview
from cyclestudio.gui.settings import Settings
from cyclestudio.gui.training_setup import TrainingSetup
from cyclestudio.project import Project
from cyclestudio.runfolder import RunFolder

# How long Quit waits for a run to stop (it finishes its step and saves a checkpoint)
# before ending the worker: a paper-size CPU step plus a checkpoint takes seconds.
STOP_GRACE_MS = 60_000

class TrainingPage(QWidget):
    """Set up a run, start it in a worker, and watch it learn."""

    # (succeeded, title, message): the main window turns it into a notification
    run_ended = Signal(bool, str, str)
    exported = Signal(list)  # files written by Export… (the Convert page lists them)

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
        self.setup_panel = TrainingSetup()
        self.setup = self.setup_panel.panel
        self.runs, self.hyper = self.setup_panel.runs, self.setup_panel.hyper
        self.generator = self.setup_panel.generator
        self.discriminator = self.setup_panel.discriminator
        self.device, self.cpu_note = self.setup_panel.device, self.setup_panel.cpu_note
        self.fast_button = self.cpu_note.button
        self.runs.currentIndexChanged.connect(self._run_chosen)
        self.setup_panel.estimate.enabled = settings.estimate

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
        self.sample_button.clicked.connect(lambda: self.runner.send(protocol.SAMPLE))
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Write this run's generators as a .csmodel, ONNX or "
                                      "TorchScript file, checked against PyTorch")
        self.export_button.clicked.connect(self.open_export)
        controls = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.stop_button, self.sample_button):
            controls.addWidget(b)
        controls.addStretch(1)
        controls.addWidget(self.export_button)
        self.status = RunStatus()
        self.error_panel = ErrorPanel()
        self.error_panel.resume.clicked.connect(lambda: self.resume_run(extra=self.resume_extra))
        self.resume_extra: list[str] = []  # what the error panel's resume adds (lower rates)
        self.plot = LossPlot()
        # Held-out figures (is the run learning?) beside the losses.
        self.validation_plot = LossPlot(key="validation", ylabel="validation", smoothing=1)
        self.preview = SamplePreview()
        views = QSplitter(Qt.Orientation.Vertical)
        curves = QSplitter(Qt.Orientation.Horizontal)
        curves.addWidget(self.plot)
        curves.addWidget(self.validation_plot)
        curves.setSizes([560, 340])
        views.addWidget(curves)
        views.addWidget(self.preview)
        views.setStretchFactor(0, 3)
        views.setStretchFactor(1, 2)
        views.setSizes([420, 300])
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addLayout(controls)
        right_layout.addWidget(self.status)
        self.warnings = WarningBanner()
        right_layout.addWidget(self.warnings)
        right_layout.addWidget(self.error_panel)
        right_layout.addWidget(views, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.setup_panel)
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
        self.setup_panel.set_plugins(self.registry.architectures("generators"),
                                     self.registry.architectures("discriminators"),
                                     self.registry.errors())
        self._update_buttons()

    def _devices_changed(self) -> None:
        devices = (self.registry.devices or {}).get("devices")
        if devices is not None:
            self.setup_panel.set_devices(devices, self.settings.default_device)

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
                state = "running" if live else RunFolder(path).describe()
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
            self._clear_plots()
            self.preview.clear()
            self.status.line.setText("Set up a run and press Start training.")
            self.status.bar.setValue(0)
        else:
            self.show_run(run)
        self._update_buttons()

    def show_run(self, run: Path) -> None:
        """Show a run folder: its settings, losses and samples."""
        self.run_dir = run
        config = RunFolder(run).read_config()
        if config:
            self.setup_panel.show_config(config)
        self._load_plots(run)
        self.preview.load(run)
        self.status.device = config.get("run", {}).get("device", "")
        self.status.bar.setValue(0)
        self.status.line.setText(f"{run.name}: {RunFolder(run).describe()}")
        self.last_progress = {}

    # -- starting and controlling ------------------------------------------------------
    def train_arguments(self, run: Path) -> list[str]:
        """The full `cyclestudio train` command line for a new run (without the program)."""
        assert self.project is not None
        args = ["train"]
        for key, flag in (("A", "--a"), ("B", "--b")):
            domain = self.project.domain(key)
            if domain.exclude:
                # Some images were removed in the app: name the rest one by one.
                sources = [str(p) for p in self.project.image_files(domain)]
            else:
                sources = [str(self.project.resolve(p)) for p in domain.paths]
            for source in sources:
                args += [flag, source]
        args += ["--a-name", self.project.a.name, "--b-name", self.project.b.name]
        args += ["--out", str(run)]
        args += self.project.validation_arguments()
        args += self.setup_panel.arguments()
        args.append("--events")
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
        if not self.setup_panel.ready():
            self.status.line.setText("The plugin list is still loading.")
            return
        run = self.project.new_run_folder(self.settings.output_folder or None)
        self._launch(self.train_arguments(run), run)
        self.project.add_run(run)
        self.project.save()
        self.refresh_runs(select=run)

    def resume_run(self, run: Path | None = None, extra: list[str] | None = None) -> None:
        """Continue a stopped or crashed run from its last checkpoint (``extra``: more
        flags, such as lower learning rates after a divergence)."""
        run = run or self.run_dir or self.selected_run()
        if run is None or self.runner.running():
            return
        args = ["train", "--resume", str(run), *(extra or []), "--events"]
        iterations = self.hyper.value("iterations")
        if iterations and iterations > int(self.last_progress.get("iteration") or 0):
            args[3:3] = ["--iterations", str(iterations)]
        if (self.hyper.value("gpus") or 1) > 1:
            args[3:3] = ["--gpus", str(self.hyper.value("gpus"))]
        self._launch(args, run)

    def _launch(self, args: list[str], run: Path) -> None:
        self.error_panel.hide()
        self.warnings.clear()
        self.run_dir = run
        self._clear_plots()
        self.preview.clear()
        if RunFolder(run).metrics.exists():
            self._load_plots(run)
            self.preview.load(run)
        self.last_progress = {}
        self.state = "starting"
        self.status.bar.setRange(0, 0)  # busy until the first event
        self.status.line.setText("Starting the worker…")
        self.runner.start(args)
        self._update_buttons()

    def open_export(self) -> None:
        """Export… the chosen run (a dialog running `cyclestudio export` in a worker)."""
        from cyclestudio.gui.export_dialog import ExportDialog

        run = self.selected_run()
        if run is None or self.state != "idle":
            return
        self.export_dialog = ExportDialog(run, self)
        self.export_dialog.exported.connect(self.exported.emit)
        self.export_dialog.open()

    def toggle_pause(self) -> None:
        """Pause a running run, continue a paused one, or resume the chosen stopped run."""
        if self.state == "idle":
            self.resume_run()
        elif self.state == "running":
            self.runner.send(protocol.PAUSE)
            self.pause_button.setEnabled(False)
        elif self.state == "paused":
            self.runner.send(protocol.RESUME)
            self.pause_button.setEnabled(False)

    def stop(self) -> None:
        """Ask the run to stop; it saves a checkpoint first."""
        if self.runner.running():
            self.runner.send(protocol.STOP)
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

    def _clear_plots(self) -> None:
        self.plot.clear()
        self.validation_plot.clear()

    def _load_plots(self, run: Path) -> None:
        self.plot.load(RunFolder(run).metrics)
        self.validation_plot.load(RunFolder(run).metrics)

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
                    self._load_plots(self.run_dir)
                self.state = "running"
                self.status.device = str(e.get("device", ""))
                progress = {**e, "eta_s": None}
                skipped = e.get("skipped") or []
                if skipped:
                    self.status.line.setToolTip("Skipped unreadable files:\n" + "\n".join(
                        f"{s.get('path')}: {s.get('reason')}" for s in skipped[:30]))
                self._update_buttons()
            elif kind == "validation":
                self.validation_plot.add_many([(e.get("iteration", 0), e.get("figures") or {})])
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
        if not message.startswith("skipping "):  # skipped files are listed apart
            self.warnings.add(message)

    def _ended(self, exit_code: int, crashed: bool, event: dict[str, Any] | None) -> None:
        run = self.run_dir
        self.state = "idle"
        name = run.name if run else "the run"
        kind = (event or {}).get("event")
        self.status.bar.setRange(0, 1)
        if kind == "finished" and exit_code == 0:
            self.status.bar.setValue(1)
            self.status.line.setText(f"Finished at iteration {event.get('iteration'):,}. "
                                     f"Model: {event.get('model') or 'not exported'}. "
                                     "Export… writes it as ONNX or TorchScript too.")
            self.run_ended.emit(True, "Training finished", f"{name} finished.")
        elif kind == "stopped" and exit_code == 0:
            self.status.line.setText(
                f"Stopped at iteration {event.get('iteration'):,}; checkpoint saved. "
                "Resume run continues from here.")
            self.run_ended.emit(True, "Training stopped", f"{name} stopped; it can be resumed.")
        else:
            reason = describe_end(exit_code, crashed, event)
            can_resume = run is not None and RunFolder(run).resumable()
            suggest = (event or {}).get("suggest") if (event or {}).get("kind") == "diverged" \
                else None
            if isinstance(suggest, dict) and {"lr_g", "lr_d"} <= set(suggest):
                g, d = float(suggest["lr_g"]), float(suggest["lr_d"])
                self.resume_extra = ["--lr", repr(g), "--lr-d", repr(d)]
                text = f"Resume with lower learning rates (G {g:g}, D {d:g})"
            else:
                self.resume_extra, text = [], "Resume from the last checkpoint"
            self.error_panel.show_error(reason, list(self.runner.log_tail), can_resume, text)
            self.status.line.setText("The run failed.")
            self.run_ended.emit(False, "Training failed", reason.splitlines()[0])
        self.refresh_runs(select=run, show=False)

    def _update_buttons(self) -> None:
        busy = self.state != "idle"
        run = self.selected_run()
        self.start_button.setEnabled(not busy and self.project is not None
                                     and self.generator.name() != "")
        folder = RunFolder(run) if run is not None else None
        resumable = (not busy and folder is not None and folder.resumable()
                     and folder.state() in ("stopped", "crashed", "failed"))
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
        # A run with a checkpoint can be exported; a finished one is what Export… is for.
        self.export_button.setEnabled(not busy and folder is not None and folder.resumable())
        self.export_button.setDefault(not busy and folder is not None
                                      and folder.state() == "finished")
        self.setup.setEnabled(not busy)
        self.runs.setEnabled(not busy)
