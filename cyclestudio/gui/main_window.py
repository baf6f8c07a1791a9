"""The main window: a page list on the left (Datasets, Training, Convert, Plugins, Settings),
projects in the File menu, notifications when a run or a conversion ends."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QInputDialog,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QSplitter,
    QStackedWidget,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from cyclestudio.errors import UserError
from cyclestudio.gui import wheel_guard
from cyclestudio.gui.convert_page import ConvertPage
from cyclestudio.gui.datasets_page import DatasetsPage
from cyclestudio.gui.jobs import JobRunner, describe_end
from cyclestudio.gui.plugins_page import PluginsPage
from cyclestudio.gui.registry import Registry
from cyclestudio.gui.settings import Settings, data_dir
from cyclestudio.gui.settings_page import SettingsPage
from cyclestudio.gui.theme import apply_theme, is_dark
from cyclestudio.gui.training_page import TrainingPage
from cyclestudio.project import PROJECT_FILE, Project

PAGES = ("Datasets", "Training", "Convert", "Plugins", "Settings")
REFRESH_DELAY_MS = 800  # ask the plugin and device workers once the window is up


def demo_folder() -> Path:
    """Where the demo project is made: the appdirs user data dir."""
    return data_dir() / "demo"


def demo_staging_folder() -> Path:
    """Where the demo is made before it is moved to ``demo_folder()``."""
    return data_dir() / "demo.partial"


def app_icon() -> QIcon:
    """A small two-colour icon (A and B), drawn so no file needs shipping."""
    from PySide6.QtGui import QColor, QPainter

    pixmap = QPixmap(64, 64)
    pixmap.fill(Qt.GlobalColor.transparent)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(QColor("#3b82f6"))
    p.setPen(Qt.PenStyle.NoPen)
    p.drawEllipse(4, 12, 40, 40)
    p.setBrush(QColor("#f59e0b"))
    p.drawEllipse(20, 12, 40, 40)
    p.end()
    return QIcon(pixmap)


class MainWindow(QMainWindow):
    """Projects, the pages, and notifications."""

    def __init__(self, settings: Settings | None = None, refresh: bool = True) -> None:
        super().__init__()
        app = QApplication.instance()
        if isinstance(app, QApplication):
            wheel_guard.install(app)
        self.settings = settings or Settings.load()
        self.project: Project | None = None
        self.notifications: list[tuple[str, str]] = []
        self._closing = False
        self.setWindowTitle("cyclestudio")
        self.setWindowIcon(app_icon())
        self.resize(1280, 800)

        self.registry = Registry(self)
        self.registry.failed.connect(lambda m: self.statusBar().showMessage(m, 10000))
        self.datasets = DatasetsPage()
        self.training = TrainingPage(self.registry, self.settings)
        self.settings_page = SettingsPage(self.settings, self.registry)
        self.settings_page.theme_changed.connect(self.set_theme)
        self.settings_page.estimate_changed.connect(self._estimate_setting)
        self.training.run_ended.connect(self.notify)
        self.datasets.smallest_side.connect(self.training.hyper.fit_to_images)
        self.convert = ConvertPage(self.settings)
        self.plugins_page = PluginsPage(self.registry)
        self.convert.job_ended.connect(self.notify)
        # A finished or stopped run is a model the Convert page can use.
        self.training.run_ended.connect(lambda *_: self.convert.refresh_models())
        self.training.exported.connect(lambda *_: self.convert.refresh_models())

        self.nav = QListWidget()
        self.nav.addItems(list(PAGES))
        self.nav.setFixedWidth(140)
        # Row height by size hint, not a style sheet: a styled list kept its light
        # colours when the theme switched to dark.
        self.nav.setSpacing(4)
        for i in range(self.nav.count()):
            self.nav.item(i).setSizeHint(QSize(0, 26))
        self.stack = QStackedWidget()
        for page in (self.datasets, self.training, self.convert, self.plugins_page,
                     self.settings_page):
            self.stack.addWidget(page)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)

        self.project_label = QLabel()
        self.project_label.setWordWrap(True)
        self.project_label.setStyleSheet("color: gray; padding: 4px")
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.nav, 1)
        side_layout.addWidget(self.project_label)
        side.setFixedWidth(150)
        splitter = QSplitter()
        splitter.addWidget(side)
        splitter.addWidget(self.stack)
        splitter.setStretchFactor(1, 1)
        self.setCentralWidget(splitter)
        self.nav.setCurrentRow(0)

        self._menus()
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(self.windowIcon(), self)
            self.tray.show()
        self.demo_runner: JobRunner | None = None
        self.set_project(None)
        for plot in (self.training.plot, self.training.validation_plot):
            plot.set_background(is_dark())
        if refresh:
            # The queries are workers that import torch: started with the window they
            # would take both cores of a small machine while it is being drawn.
            QTimer.singleShot(REFRESH_DELAY_MS, self.registry.refresh)

    # -- menus -----------------------------------------------------------------
    def _menus(self) -> None:
        file = self.menuBar().addMenu("&File")
        new = QAction("&New project…", self, shortcut=QKeySequence.StandardKey.New)
        new.triggered.connect(self.new_project_dialog)
        open_ = QAction("&Open project…", self, shortcut=QKeySequence.StandardKey.Open)
        open_.triggered.connect(self.open_project_dialog)
        self.recent_menu = file.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        demo = QAction("Open the &demo project", self)
        demo.triggered.connect(self.open_or_create_demo)
        quit_ = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_.triggered.connect(self.close)
        file.addAction(new)
        file.addAction(open_)
        file.addMenu(self.recent_menu)
        file.addAction(demo)
        file.addSeparator()
        file.addAction(quit_)
        view = self.menuBar().addMenu("&View")
        for i, name in enumerate(PAGES):
            action = QAction(name, self, shortcut=QKeySequence(f"Ctrl+{i + 1}"))
            action.triggered.connect(lambda _=False, i=i: self.nav.setCurrentRow(i))
            view.addAction(action)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_projects:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_project(Path(p)))
        if not self.settings.recent_projects:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def show_page(self, name: str) -> None:
        """Switch to a page by name."""
        self.nav.setCurrentRow(PAGES.index(name))

    # -- projects ----------------------------------------------------------------
    def set_project(self, project: Project | None) -> None:
        """Show a project on every page (None: no project open)."""
        self.project = project
        self.datasets.set_project(project)
        self.training.set_project(project)
        self.convert.set_project(project)
        if project is None:
            self.setWindowTitle("cyclestudio")
            self.project_label.setText("No project.\nFile ▸ New or Open.")
        else:
            self.setWindowTitle(f"{project.name} — cyclestudio")
            self.project_label.setText(f"Project:\n{project.name}")
            self.project_label.setToolTip(str(project.folder))
            self.settings.remember_project(project.folder)
            self.settings.save()

    def open_project(self, folder: Path) -> bool:
        """Open a project folder; a bad one is explained, not raised."""
        try:
            project = Project.load(folder)
        except UserError as error:
            self.show_error("Cannot open the project", f"{error.message}\n{error.hint}")
            return False
        self.set_project(project)
        return True

    def new_project(self, folder: Path, a_name: str = "A", b_name: str = "B") -> bool:
        """Create a project folder and open it."""
        try:
            project = Project.create(folder, a_name=a_name, b_name=b_name)
        except (UserError, OSError) as error:
            self.show_error("Cannot create the project", str(error))
            return False
        self.set_project(project)
        self.show_page("Datasets")
        return True

    def new_project_dialog(self) -> None:
        """Ask for a folder and the two domain names, then create the project."""
        folder = QFileDialog.getExistingDirectory(self, "Folder for the new project")
        if not folder:
            return
        names, ok = QInputDialog.getText(
            self, "Domain names", "Names of domain A and domain B (e.g. horse, zebra):",
            text="A, B")
        if not ok:
            return
        parts = [p.strip() for p in names.split(",") if p.strip()] + ["A", "B"]
        self.new_project(Path(folder), parts[0], parts[1])

    def open_project_dialog(self) -> None:
        """Ask for a project folder (or its project.json) and open it."""
        file, _ = QFileDialog.getOpenFileName(
            self, "Open a project", "", f"cyclestudio project ({PROJECT_FILE})")
        if file:
            self.open_project(Path(file).parent)

    # -- first launch and the demo ---------------------------------------------------
    def first_launch(self) -> None:
        """Open the last project, else the demo project, else offer to make the demo."""
        last = Path(self.settings.last_project) if self.settings.last_project else None
        if last is not None and (last / PROJECT_FILE).exists():
            self.open_project(last)
        elif (demo_folder() / PROJECT_FILE).exists():
            self.open_project(demo_folder())
        elif not self.settings.demo_offered:
            self.settings.demo_offered = True
            self.settings.save()
            box = QMessageBox(QMessageBox.Icon.Question, "Welcome to cyclestudio",
                              "Make the demo project so there is something to look at?\n"
                              "It writes two small image folders to\n"
                              f"{demo_folder()}.",
                              QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                              self)
            box.buttonClicked.connect(
                lambda b: self.create_demo()
                if box.standardButton(b) == QMessageBox.StandardButton.Yes else None)
            box.open()
            self.welcome_box = box

    def open_or_create_demo(self) -> None:
        """Open the demo project, making it first if needed."""
        if (demo_folder() / PROJECT_FILE).exists():
            self.open_project(demo_folder())
        else:
            self.create_demo()

    def create_demo(self) -> None:
        """Run `cyclestudio demo DIR` as a worker, then open the project.

        The worker writes project.json before the images, so it works in a side folder
        that is renamed into place only when complete: a demo cut short (the window
        closed meanwhile) is never opened as if it were whole.
        """
        if self.demo_runner is not None and self.demo_runner.running():
            return
        staging = demo_staging_folder()
        shutil.rmtree(staging, ignore_errors=True)
        self.statusBar().showMessage("Making the demo project…")
        self.demo_runner = JobRunner(self)
        self.demo_runner.ended.connect(self._demo_made)
        self.demo_runner.start(["demo", str(staging)])

    def _demo_made(self, exit_code: int, crashed: bool, event: object) -> None:
        assert self.demo_runner is not None
        staging, target = demo_staging_folder(), demo_folder()
        if exit_code == 0 and (staging / PROJECT_FILE).exists():
            try:
                if target.is_dir() and not any(target.iterdir()):
                    target.rmdir()
                staging.rename(target)
            except OSError as error:
                self.statusBar().clearMessage()
                self.show_error("Could not make the demo project",
                                f"{target} is in the way: {error.strerror or error}")
                return
            self.statusBar().showMessage("Demo project ready.", 5000)
            self.open_project(target)
            return
        self.statusBar().clearMessage()
        log = "\n".join(list(self.demo_runner.log_tail)[-8:])
        self.show_error("Could not make the demo project",
                        describe_end(exit_code, crashed, event if isinstance(event, dict)
                                     else None) + (f"\n\n{log}" if log else "")
                        + "\n\nUse File ▸ New project to start your own.")

    # -- feedback ----------------------------------------------------------------
    def show_error(self, title: str, text: str) -> None:
        """A non-blocking error dialog."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok,
                          self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.notifications.append((title, text))

    def notify(self, ok: bool, title: str, message: str) -> None:
        """Tell the user a run ended, even when the window is in the background."""
        self.notifications.append((title, message))
        self.statusBar().showMessage(f"{title}: {message}", 30000)
        if self.tray is not None:
            icon = (QSystemTrayIcon.MessageIcon.Information if ok
                    else QSystemTrayIcon.MessageIcon.Critical)
            self.tray.showMessage(title, message, icon, 10000)
        QApplication.alert(self)

    def _estimate_setting(self, on: bool) -> None:
        self.training.setup_panel.estimate.enabled = on
        if on:
            self.training.setup_panel._ask_estimate()
        else:
            self.training.setup_panel.estimate.stop()
            self.training.setup_panel.estimate.setText("")

    def set_theme(self, theme: str) -> None:
        """Switch light/dark/system."""
        app = QApplication.instance()
        if isinstance(app, QApplication):
            dark = apply_theme(app, theme)
            for plot in (self.training.plot, self.training.validation_plot):
                plot.set_background(dark)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        if self._closing:  # Quit pressed again while the jobs are stopping
            event.ignore()
            return
        self._closing = True
        # Stop the run so it saves a checkpoint; it can be resumed next time. The
        # window keeps painting meanwhile and says what it is waiting for.
        waiting = None
        if self.training.runner.running() or self.convert.runner.running():
            waiting = QProgressDialog(
                "Stopping the running job (a training run saves a checkpoint first)…",
                "", 0, 0, self)
            waiting.setCancelButton(None)
            waiting.setWindowTitle("Closing cyclestudio")
            waiting.setWindowModality(Qt.WindowModality.WindowModal)
            waiting.setMinimumDuration(0)
            waiting.show()
        for message in (self.training.shutdown(), self.convert.shutdown()):
            if message:
                sys.stderr.write(f"cyclestudio: {message}\n")
                self.notify(False, "Worker ended", message)
        if waiting is not None:
            waiting.close()
        self.registry.stop()
        self.training.setup_panel.estimate.stop()
        self.datasets.stop()
        if self.demo_runner is not None and self.demo_runner.running():
            self.demo_runner.ended.disconnect(self._demo_made)  # no dialog while closing
            self.demo_runner.kill()
            self.demo_runner.wait(3000)
        if self.tray is not None:
            self.tray.hide()
        super().closeEvent(event)
