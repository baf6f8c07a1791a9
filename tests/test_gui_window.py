"""Stories about the main window: pages, projects, settings, option forms, worker failures."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox

from cyclestudio.gui import jobs
from cyclestudio.gui.main_window import PAGES, MainWindow
from cyclestudio.gui.option_form import OptionForm
from cyclestudio.gui.settings import Settings
from cyclestudio.project import Project

PLUGINS = {
    "generators": [{
        "name": "tiny", "title": "Tiny", "description": "", "source": "test",
        "size_multiple": 4,
        "options": [
            {"name": "width", "type": "int", "default": 16, "help": "channels", "min": 1,
             "max": 64, "choices": None},
            {"name": "norm", "type": "str", "default": "instance", "help": "normalisation",
             "min": None, "max": None, "choices": ["instance", "batch"]},
            {"name": "dropout", "type": "bool", "default": False, "help": "", "min": None,
             "max": None, "choices": None},
            {"name": "slope", "type": "float", "default": 0.2, "help": "", "min": 0.0,
             "max": 1.0, "choices": None},
        ],
    }],
    "discriminators": [{"name": "patchgan", "title": "PatchGAN", "description": "",
                        "source": "test", "size_multiple": 1, "options": []}],
    "errors": [{"source": "broken.py", "message": "SyntaxError", "details": ""}],
}


def make_images(folder: Path, count: int, size=(40, 32)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", size, (i * 30 % 255, 90, 160)).save(folder / f"img_{i:02d}.png")
    return folder


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow(refresh=False)
    qtbot.addWidget(w)
    w.registry.plugins = PLUGINS
    w.registry.plugins_changed.emit()
    w.show()
    w.set_project(Project.create(tmp_path / "project", a_name="horse", b_name="zebra"))
    yield w
    w.close()


def drop(widget, paths: list[Path]) -> None:
    """Drag files/folders from a file manager and drop them on ``widget``."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = widget.rect().center()  # a QPoint: QDragEnterEvent takes no QPointF before Qt 6.12
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    event = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def test_the_window_opens_on_each_page(window, qtbot):
    for i, name in enumerate(PAGES):
        window.show_page(name)
        assert window.stack.currentIndex() == i
        assert window.stack.currentWidget().isVisible()
    assert window.windowTitle().startswith("project")
    assert window.training.generator.name() == "tiny"
    errors = window.training.setup_panel.plugin_errors  # a broken plugin is listed, not fatal
    assert not errors.isHidden() and "broken.py" in errors.text()


def test_dropping_a_folder_counts_its_images_and_flags_a_bad_file(window, qtbot, tmp_path):
    folder = make_images(tmp_path / "horses", 5)
    (folder / "broken.jpg").write_bytes(b"this is not a jpeg")
    make_images(folder / "more", 2, size=(64, 48))
    panel = window.datasets.panels["A"]
    drop(panel, [folder])
    qtbot.waitUntil(lambda: not panel.scanning, timeout=10000)
    assert panel.counts() == (7, 1)
    assert "40×32 to 64×48" in panel.summary.text()
    assert "1 unreadable" in panel.summary.text()
    assert panel.bad.isVisible() and "broken.jpg" in panel.bad.item(0).text()
    saved = json.loads((window.project.folder / "project.json").read_text())
    assert saved["domains"]["A"]["paths"] == [str(folder)]
    # Thumbnails are made off the UI thread and then shown.
    panel.view.resize(600, 400)
    good = next(e.path for e in panel.model.entries if not e.reason)
    panel.thumbnails.get(good)
    qtbot.waitUntil(lambda: panel.thumbnails.get(good) is not None, timeout=10000)
    assert panel.thumbnails.get(good).width() <= 96


def test_the_crop_size_follows_small_images_until_the_user_sets_it(window, qtbot, tmp_path):
    hyper = window.training.hyper
    assert (hyper.resolved()["size"], hyper.resolved()["load_size"]) == (256, 286)  # the paper's
    drop(window.datasets.panels["A"], [make_images(tmp_path / "a", 3, size=(70, 90))])
    drop(window.datasets.panels["B"], [make_images(tmp_path / "b", 3, size=(120, 66))])
    qtbot.waitUntil(lambda: hyper.value("size") == 64, timeout=10000)
    assert hyper.resolved()["load_size"] == 72 and "shortest side 66 px" in hyper.fitted_note.text()
    hyper.set_value("size", 48)  # the user's choice wins over later scans
    drop(window.datasets.panels["A"], [make_images(tmp_path / "c", 2, size=(40, 40))])
    panel = window.datasets.panels["A"]
    qtbot.waitUntil(lambda: not panel.scanning, timeout=10000)
    assert hyper.value("size") == 48 and hyper.fitted_note.text() == ""
    assert "--size" in window.training.train_arguments(tmp_path / "run")


def test_removing_images_leaves_them_out_without_deleting(window, qtbot, tmp_path):
    folder = make_images(tmp_path / "zebras", 4)
    panel = window.datasets.panels["B"]
    panel.add_paths([folder])
    qtbot.waitUntil(lambda: not panel.scanning, timeout=10000)
    panel.view.selectionModel().select(panel.model.index(1),
                                       panel.view.selectionModel().SelectionFlag.Select)
    panel.remove_selected()
    qtbot.waitUntil(lambda: not panel.scanning, timeout=10000)
    assert panel.counts() == (3, 0)
    assert (folder / "img_01.png").exists()
    reopened = Project.load(window.project.folder)
    assert reopened.b.exclude == [str(folder / "img_01.png")]
    # Training then names the remaining images one by one.
    args = window.training.train_arguments(tmp_path / "run")
    b_inputs = [args[i + 1] for i, a in enumerate(args) if a == "--b"]
    assert sorted(Path(p).name for p in b_inputs) == ["img_00.png", "img_02.png", "img_03.png"]


def test_option_forms_enforce_ranges_and_choices(qtbot):
    form = OptionForm()
    qtbot.addWidget(form)
    form.set_options(PLUGINS["generators"][0]["options"])
    width, norm = form.widgets["width"], form.widgets["norm"]
    assert isinstance(width, QSpinBox) and (width.minimum(), width.maximum()) == (1, 64)
    assert isinstance(norm, QComboBox) and norm.count() == 2
    assert isinstance(form.widgets["dropout"], QCheckBox)
    assert isinstance(form.widgets["slope"], QDoubleSpinBox)
    assert "channels" in width.toolTip()
    assert form.changed_options() == []
    form.set_values({"width": 500, "norm": "batch", "dropout": True})
    assert form.values()["width"] == 64  # clamped to the option's range
    assert form.changed_options() == ["width=64", "norm=batch", "dropout=true"]


def test_number_fields_read_as_typed_not_padded_to_six_places(window, qtbot):
    form = OptionForm()
    qtbot.addWidget(form)
    form.set_options(PLUGINS["generators"][0]["options"])
    slope = form.widgets["slope"]
    slope.setValue(1.0)
    assert slope.text() == "1"  # was "1.000000"
    slope.setValue(0.25)
    assert slope.text() == "0.25"
    slope.clear()
    qtbot.keyClicks(slope, "0.5")
    slope.interpretText()
    assert slope.value() == 0.5
    lr = window.training.hyper.field("lr_g")
    assert lr.text() == "0.0002" and lr.value() == 2e-4  # six places kept for rates
    for name in ("ema", "lambda_cycle"):
        field = window.training.hyper.field(name)
        assert "000" not in field.text(), (name, field.text())


def test_training_arguments_carry_the_form(window, tmp_path):
    window.project.a.paths.append(str(make_images(tmp_path / "a", 2)))
    window.project.b.paths.append(str(make_images(tmp_path / "b", 2)))
    t = window.training
    t.generator.form.set_values({"width": 8})
    t.hyper.set_value("size", 64)
    args = t.train_arguments(tmp_path / "run")
    joined = " ".join(args)
    assert "--generator tiny" in joined
    assert "--generator-option width=8" in joined
    assert "--size 64" in joined
    # Only what differs from the defaults: the job works out the rest (load size too).
    for flag in ("--discriminator", "--load-size", "--lr", "--lambda-cycle", "--epochs",
                 "--decay-epochs", "--device"):
        assert flag not in args
    assert "--a-name horse --b-name zebra" in joined
    assert args[-1] == "--events"


def test_settings_persist_between_sessions(window, qtbot):
    page = window.settings_page
    page.theme.setCurrentIndex(page.theme.findData("dark"))
    page.output.setText("/somewhere/runs")
    page._output_edited()
    again = Settings.load()
    assert again.theme == "dark" and again.output_folder == "/somewhere/runs"
    assert again.last_project == str(window.project.folder.absolute())
    assert Settings.file().parent != Path.home() / ".config" / "cyclestudio"


def test_reopening_a_project_restores_its_last_run_plot(window, qtbot, tmp_path):
    run = tmp_path / "project" / "runs" / "old"
    (run / "samples").mkdir(parents=True)
    lines = [json.dumps({"iteration": i, "epoch": 1, "losses": {"G_A": 1.0 / i, "D_A": 0.5},
                         "lr": 2e-4, "time": i}) for i in range(1, 21)]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n{\"iteration\": 21, \"epo")
    Image.new("RGB", (60, 20)).save(run / "samples" / "00000010.png")
    Image.new("RGB", (60, 20)).save(run / "samples" / "00000020.png")
    window.project.add_run(run)
    window.project.save()
    window.open_project(window.project.folder)
    plot = window.training.plot
    qtbot.waitUntil(lambda: plot.points() == 40, timeout=5000)  # the cut line is skipped
    assert window.training.preview.shown().name == "00000020.png"
    window.training.preview.slider.setValue(0)
    assert window.training.preview.shown().name == "00000010.png"


FAKE_CRASH = textwrap.dedent("""
    import json, sys, time
    print(json.dumps({"event": "started", "schema": 1, "run": sys.argv[-1], "device": "cpu",
                      "iteration": 0, "epoch": 1, "total_iterations": 100}), flush=True)
    for i in range(1, 4):
        print(json.dumps({"event": "progress", "schema": 1, "iteration": i, "epoch": 1,
                          "total_iterations": 100, "losses": {"G_A": 1.0, "D_A": 0.5},
                          "images_per_s": 3.0, "eta_s": 30}), flush=True)
    for message in ("skipping /data/x.png: empty file", "D_A has fallen to about 0"):
        print(json.dumps({"event": "warning", "schema": 1, "message": message}), flush=True)
    sys.stderr.write("Traceback (most recent call last):\\n  ...\\nRuntimeError: boom in plugin\\n")
    sys.stderr.flush()
    sys.exit(1)
""")


def test_a_worker_that_dies_shows_why_and_offers_resume(window, qtbot, tmp_path, monkeypatch):
    script = tmp_path / "crash.py"
    script.write_text(FAKE_CRASH)
    monkeypatch.setattr(jobs, "worker_command", lambda args: [sys.executable, str(script),
                                                               *args])
    run = tmp_path / "project" / "runs" / "crashy"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "latest.pt").write_bytes(b"x")
    t = window.training
    window.show_page("Training")
    with qtbot.waitSignal(t.run_ended, timeout=20000) as ended:
        t._launch(["train", "--resume", str(run), "--events"], run)
    assert ended.args[0] is False
    assert t.error_panel.isVisible()
    assert "RuntimeError: boom in plugin" in t.error_panel.log.toPlainText()
    assert "exit code 1" in t.error_panel.reason.text()
    assert t.error_panel.resume.isVisible()
    assert t.plot.points() == 6
    assert window.notifications[-1][0] == "Training failed"
    assert t.state == "idle" and t.start_button.isEnabled()
    # The run's advice stays in view; skipped files are listed elsewhere.
    assert t.warnings.isVisible() and "D_A has fallen to about 0" in t.warnings.text()
    assert "skipping" not in t.warnings.text()


def test_the_dark_theme_darkens_the_window_and_the_plot_and_system_brings_it_back(
        window, qtbot):
    page = window.settings_page
    plot = window.training.plot.plot

    def window_lightness() -> int:
        return window.palette().window().color().lightness()

    try:
        page.theme.setCurrentIndex(page.theme.findData("dark"))
        qtbot.waitUntil(lambda: window_lightness() < 128, timeout=5000)
        assert window.palette().text().color().lightness() > 128  # readable text
        assert plot.backgroundBrush().color().lightness() < 128
        for widget in (window.nav, window.convert.table):  # as drawn, below the items
            image = widget.grab().toImage()
            assert image.pixelColor(image.width() // 2, image.height() - 8).lightness() < 128
    finally:
        page.theme.setCurrentIndex(page.theme.findData("system"))
    qtbot.waitUntil(lambda: window_lightness() > 128, timeout=5000)  # offscreen is light
    assert plot.backgroundBrush().color().lightness() > 128
