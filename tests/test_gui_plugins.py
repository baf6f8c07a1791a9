"""The Plugins page: every plugin with where it came from, a broken one's traceback,
the plugin folder, reload without restarting, and a plugin turned off that stays off."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QDesktopServices
from test_plugins import GOOD

from cyclestudio.gui.main_window import MainWindow
from cyclestudio.paths import user_plugin_dir
from cyclestudio.plugins.discovery import PLUGIN_PATH_ENV, load_registry

WAIT_MS = 120_000  # a worker imports torch; a busy 2-core machine takes its time


@pytest.fixture
def user_plugins(tmp_path, monkeypatch):
    folder = tmp_path / "more-plugins"
    folder.mkdir()
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(folder))
    (folder / "good.py").write_text(GOOD)
    (folder / "broken.py").write_text("import torch\n\nraise RuntimeError('needs CUDA 13')\n")
    return folder


@pytest.fixture
def window(qtbot, user_plugins):
    w = MainWindow(refresh=False)
    qtbot.addWidget(w)
    w.show()
    w.show_page("Plugins")
    with qtbot.waitSignal(w.registry.plugins_changed, timeout=WAIT_MS):
        w.plugins_page.reload_button.click()
    yield w
    w.close()


def rows(page):
    items = [page.table.topLevelItem(i) for i in range(page.table.topLevelItemCount())]
    return {item.text(1): item for item in items}


def test_the_page_lists_each_plugin_and_shows_why_a_broken_one_broke(window, monkeypatch):
    page = window.plugins_page
    table = rows(page)
    resnet = table["resnet_generator"]
    assert [resnet.text(i) for i in (2, 3, 5)] == ["generator", "built-in", "ok"]
    assert resnet.text(4) != "—"  # the cyclestudio version
    assert [table["good"].text(i) for i in (2, 3, 5)] == ["generator", "user file", "ok"]
    assert table["patchgan_discriminator"].text(2) == "discriminator"
    assert table["broken"].text(5) == "error"
    assert page.status.text().endswith("; 1 failed to load")

    # The broken plugin is shown first, with its error and its traceback.
    assert page.table.currentItem() is table["broken"]
    assert "RuntimeError: needs CUDA 13" in page.details.text()
    assert page.traceback.isVisible()
    assert "broken.py\", line 3" in page.traceback.toPlainText()

    page.table.setCurrentItem(table["resnet_generator"])
    assert "ResNet, 9 blocks" in page.details.text() and not page.traceback.isVisible()

    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    assert not user_plugin_dir().exists()
    page.folder_button.click()
    assert opened == [str(user_plugin_dir())] and user_plugin_dir().is_dir()
    assert str(user_plugin_dir()) in page.folder_label.text()


def test_unticking_a_plugin_turns_it_off_for_the_app_and_every_job(window, qtbot, user_plugins):
    page, generators = window.plugins_page, window.training.generator.combo
    assert generators.findData("tiny_gen") >= 0
    with qtbot.waitSignal(window.registry.plugins_changed, timeout=WAIT_MS):
        rows(page)["good"].setCheckState(0, Qt.CheckState.Unchecked)
    good = rows(page)["good"]
    assert good.text(5) == "disabled" and good.checkState(0) == Qt.CheckState.Unchecked
    assert generators.findData("tiny_gen") < 0
    # Remembered where the jobs look, too.
    assert load_registry().plugin(str(user_plugins / "good.py")).status == "disabled"

    (user_plugins / "new_one.py").write_text(GOOD.replace('"tiny_gen"', '"fresh_gen"'))
    with qtbot.waitSignal(window.registry.plugins_changed, timeout=WAIT_MS):
        rows(page)["good"].setCheckState(0, Qt.CheckState.Checked)
    assert rows(page)["good"].text(5) == "ok"
    # Reloading (here, by the enable) picks up a file written while the app runs.
    assert generators.findData("tiny_gen") >= 0 and generators.findData("fresh_gen") >= 0
