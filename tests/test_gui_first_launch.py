"""The first launch: a welcome question, the real `cyclestudio demo` worker, and the demo
project open on the Datasets page with its two domains. Later launches just reopen it."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from cyclestudio.gui.main_window import MainWindow, demo_folder, demo_staging_folder
from cyclestudio.gui.settings import Settings


def launch(qtbot) -> MainWindow:
    """What `cyclestudio` does: a window from the saved settings, then first_launch."""
    window = MainWindow(Settings.load(), refresh=False)
    qtbot.addWidget(window)
    window.show()
    window.first_launch()
    return window


def test_first_launch_makes_the_demo_project_and_shows_its_two_domains(qtbot):
    window = launch(qtbot)
    assert window.project is None
    box = window.welcome_box
    assert box.isVisible() and str(demo_folder()) in box.text()
    box.button(QMessageBox.StandardButton.Yes).click()  # runs `cyclestudio demo DIR`
    qtbot.waitUntil(lambda: window.project is not None, timeout=120000)
    assert window.notifications == []  # no error dialog
    assert window.project.folder == demo_folder()
    assert not demo_staging_folder().exists()
    assert window.windowTitle().startswith("cyclestudio demo")
    assert window.stack.currentWidget() is window.datasets
    panels = window.datasets.panels
    qtbot.waitUntil(lambda: not any(p.scanning for p in panels.values()), timeout=30000)
    assert (panels["A"].name_edit.text(), panels["B"].name_edit.text()) == ("day", "dusk")
    assert panels["A"].counts() == (200, 0) and panels["B"].counts() == (200, 0)
    assert "64×64" in panels["A"].summary.text()
    window.close()

    again = launch(qtbot)  # the next start opens it straight away, no question
    assert not hasattr(again, "welcome_box")
    assert again.project is not None and again.project.folder == demo_folder()
    again.close()


def test_declining_the_demo_is_remembered(qtbot):
    window = launch(qtbot)
    window.welcome_box.button(QMessageBox.StandardButton.No).click()
    assert window.project is None and window.demo_runner is None
    window.close()
    again = launch(qtbot)
    assert not hasattr(again, "welcome_box") and again.project is None
    again.close()


def test_a_demo_cut_short_is_not_opened_as_a_project(qtbot):
    window = launch(qtbot)
    window.welcome_box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: (demo_staging_folder() / "project.json").exists(), timeout=60000)
    window.close()  # kills the worker mid-way
    assert not (demo_folder() / "project.json").exists()
    # The File menu offers it again, and this time it completes.
    again = launch(qtbot)
    assert again.project is None
    again.open_or_create_demo()
    qtbot.waitUntil(lambda: again.project is not None, timeout=120000)
    assert again.project.folder == demo_folder()
    again.close()
