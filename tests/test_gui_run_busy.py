"""A run that another process is training shows as busy on the Training page, and
cannot be resumed from the app while it is held."""

from __future__ import annotations

import os

from test_gui_convert import tiny_run  # noqa: F401 - fixture

from cyclestudio.gui.main_window import MainWindow
from cyclestudio.project import Project
from cyclestudio.runfolder import RunFolder


def test_a_run_held_by_another_process_shows_as_busy_and_cannot_be_resumed(
        qtbot, tmp_path, tiny_run):  # noqa: F811 - fixture
    window = MainWindow(refresh=False)
    qtbot.addWidget(window)
    project = Project.create(tmp_path / "project", a_name="horse", b_name="zebra")
    project.add_run(tiny_run)
    project.save()
    window.open_project(project.folder)
    t = window.training
    t.refresh_runs(select=tiny_run)
    assert "stopped, can resume" in t.runs.currentText()
    assert t.pause_button.text() == "Resume run" and t.pause_button.isEnabled()
    with RunFolder(tiny_run).lock("training"):  # as `cyclestudio train --resume` holds it
        t.refresh_runs(select=tiny_run)
        assert f"running in another process (pid {os.getpid()})" in t.runs.currentText()
        assert not t.pause_button.isEnabled()
    t.refresh_runs(select=tiny_run)
    assert "stopped, can resume" in t.runs.currentText() and t.pause_button.isEnabled()
    window.close()
