"""What a new user meets in the app in the first hour: each story a fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QWheelEvent
from PySide6.QtWidgets import QApplication

from cyclestudio.gui.loss_plot import BACKGROUNDS, COLOURS
from cyclestudio.gui.main_window import MainWindow
from cyclestudio.gui.results_table import Result
from cyclestudio.project import Project


def _option(name, type_, default, choices=None, low=None, high=None):
    return {"name": name, "type": type_, "default": default, "help": "", "min": low,
            "max": high, "choices": choices}


RESNET_OPTIONS = [_option("width", "int", 64, low=1, high=1024),
                  _option("upsample", "str", "transposed", ["transposed", "resize"])]
PLUGINS = {
    "generators": [
        {"name": n, "title": n, "description": "", "source": "test", "size_multiple": 4,
         "options": RESNET_OPTIONS} for n in ("resnet_9blocks", "resnet_6blocks")],
    "discriminators": [{"name": "patchgan", "title": "PatchGAN", "description": "",
                        "source": "test", "size_multiple": 1,
                        "options": [_option("width", "int", 64, low=1, high=1024)]}],
    "errors": [],
}
CPU_ONLY = {"devices": [{"id": "cpu", "name": "CPU (2 cores)", "memory_bytes": None}]}
WITH_GPU = {"devices": [{"id": "cuda:0", "name": "GPU", "memory_bytes": 8 * 2**30},
                        {"id": "cpu", "name": "CPU", "memory_bytes": None}]}


def make_images(folder: Path, count: int, size=(48, 40)) -> Path:
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
    w.registry.devices = CPU_ONLY
    w.registry.devices_changed.emit()
    w.resize(1280, 600)
    w.show()
    w.set_project(Project.create(tmp_path / "project", a_name="horse", b_name="zebra"))
    yield w
    w.close()


def wheel(widget, down: bool = True) -> None:
    """One notch of the mouse wheel over ``widget``, without clicking it."""
    pos = QPointF(widget.rect().center())
    delta = -120 if down else 120
    event = QWheelEvent(pos, QPointF(widget.mapToGlobal(pos.toPoint())), QPoint(0, 0),
                        QPoint(0, delta), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_scrolling_the_training_form_never_changes_the_fields_under_the_pointer(window, qtbot):
    window.show_page("Training")
    t = window.training
    epochs, gan_loss = t.hyper.field("epochs"), t.hyper.field("gan_loss")
    area = t.setup_panel  # the scroll area around the form
    bar = area.verticalScrollBar()
    assert bar.maximum() > 0, "the form should be taller than the window"
    before = (epochs.value(), gan_loss.currentText(), bar.value())
    for _ in range(5):
        wheel(epochs.lineEdit())
        wheel(epochs)
        wheel(gan_loss)
    assert (epochs.value(), gan_loss.currentText()) == before[:2]
    assert bar.value() > before[2], "the wheel scrolls the form instead"

    epochs.setFocus()  # clicked or tabbed into: now the wheel is for the field
    qtbot.waitUntil(epochs.hasFocus)
    wheel(epochs)
    assert epochs.value() == before[0] - 1


def test_on_a_cpu_the_page_says_so_and_offers_the_fast_settings(window):
    t = window.training
    window.show_page("Training")
    assert t.device.itemText(0) == "auto (the CPU here)"
    assert t.cpu_note.isVisible()
    t.fast_button.click()
    assert t.generator.name() == "resnet_6blocks"
    assert t.generator.form.values()["width"] == 16
    assert t.generator.form.values()["upsample"] == "resize"
    assert t.discriminator.form.values()["width"] == 32
    assert t.hyper.value("size") <= 64
    assert not t.cpu_note.isVisible()
    args = t.train_arguments(Path("RUN"))
    # The default preset's generator: named only when it differs from the preset's.
    assert "--generator" not in args or args[args.index("--generator") + 1] == "resnet_6blocks"
    assert "width=16" in args and "upsample=resize" in args and "width=32" in args

    window.registry.devices = WITH_GPU
    window.registry.devices_changed.emit()
    t.generator.select("resnet_9blocks", {})
    assert not t.cpu_note.isVisible()  # auto picks the GPU
    t.device.setCurrentIndex(t.device.findData("cpu"))
    assert t.cpu_note.isVisible()


def test_the_domain_name_fields_have_their_own_examples(window):
    a, b = window.datasets.panels["A"], window.datasets.panels["B"]
    assert a.name_edit.placeholderText() != b.name_edit.placeholderText()
    assert "domain A" in a.name_edit.placeholderText()


def test_the_crop_size_note_is_back_for_a_new_run_after_a_relaunch(qtbot, tmp_path):
    folder = tmp_path / "project"
    project = Project.create(folder, a_name="horse", b_name="zebra")
    project.a.paths = [str(make_images(tmp_path / "a", 3))]
    project.b.paths = [str(make_images(tmp_path / "b", 3))]
    run = folder / "runs" / "run-1"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(
        {"config_version": 1, "data": {"size": 256, "load_size": 286}, "optim": {}, "run": {}}))
    project.add_run(run)
    project.save()

    window = MainWindow(refresh=False)  # the relaunch: the last run is shown first
    qtbot.addWidget(window)
    window.registry.plugins = PLUGINS
    window.registry.plugins_changed.emit()
    window.show()
    window.open_project(folder)
    t = window.training
    qtbot.waitUntil(lambda: t.hyper.smallest_side == 40, timeout=20000)
    assert t.selected_run() == run and t.hyper.value("size") == 256  # the run's own size
    t.runs.setCurrentIndex(0)  # "New run"
    assert t.hyper.value("size") == 40
    assert "Fitted to your images" in t.hyper.fitted_note.text()
    assert t.hyper.fitted_note.isVisibleTo(t.hyper)
    window.close()


def _contrast(a: str, b: str) -> float:
    def luminance(colour: str) -> float:
        c = QColor(colour)
        parts = []
        for v in (c.redF(), c.greenF(), c.blueF()):
            parts.append(v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4)
        return 0.2126 * parts[0] + 0.7152 * parts[1] + 0.0722 * parts[2]

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_every_loss_colour_reads_well_on_the_light_and_the_dark_plot():
    for colour in COLOURS:
        for background in BACKGROUNDS.values():
            assert _contrast(colour, background) >= 3.5, (colour, background)
    assert len(set(COLOURS)) == len(COLOURS)


def test_the_convert_page_shows_whole_status_words_and_names_its_own_checkbox(window):
    c = window.convert
    window.show_page("Convert")
    c._events([
        {"event": "file", "input": "/in/a.png", "output": None, "status": "skipped",
         "reason": "output exists (use --overwrite to replace it)", "code": "output_exists"},
        {"event": "file", "input": "/in/b.png", "output": "/out/b_zebra.png",
         "status": "translated", "reason": None},
    ])
    shown = c.results.data(c.results.index(0, 2))
    assert "--overwrite" not in shown and c.overwrite.text() in shown
    metrics = c.table.fontMetrics()
    for word in ("translated", "skipped", "failed"):
        assert c.table.columnWidth(0) > metrics.horizontalAdvance(word)
    assert isinstance(c.results.results[0], Result)


def test_the_plot_has_no_kink_where_a_run_resumed(window, qtbot, tmp_path):
    t = window.training
    run = tmp_path / "run"
    run.mkdir()

    def write(last: int) -> None:
        (run / "metrics.jsonl").write_text("".join(
            json.dumps({"iteration": i, "losses": {"G_A": 1.0 / i}}) + "\n"
            for i in range(10, last + 1, 10)))

    write(100)  # the run crashed at 100; its checkpoint is at 50
    t.run_dir = run
    with qtbot.waitSignal(t.plot.loaded, timeout=10000):
        t.plot.load(run / "metrics.jsonl")
    write(50)  # the resumed worker drops what came after its checkpoint, then starts
    with qtbot.waitSignal(t.plot.loaded, timeout=10000):
        t._events([{"event": "started", "resumed": True, "iteration": 50, "device": "cpu",
                    "total_iterations": 200}])
    t._events([{"event": "progress", "iteration": i, "losses": {"G_A": 1.0 / i},
                "total_iterations": 200} for i in (60, 70)])
    xs = list(t.plot.series["G_A"].x)
    assert xs == sorted(xs) == [10, 20, 30, 40, 50, 60, 70]


def test_the_recipe_box_fills_in_a_preset_says_what_it_changes_and_turns_custom(window):
    window.show_page("Training")
    t = window.training.setup_panel  # the setup beside the run's plots
    assert t.preset.currentData() == "fast"
    note = t.preset_note.text()
    for change in ("λ identity 0,", "weight average 0.999", "generator residual=true",
                   "discriminator norm=none"):
        assert change in note, note
    assert (t.hyper.value("lambda_identity"), t.hyper.value("ema")) == (0, 0.999)

    t.preset.setCurrentIndex(t.preset.findData("paper"))
    assert t.generator.name() == "resnet_9blocks"
    assert t.generator.form.values()["width"] == 64
    assert (t.hyper.value("lambda_identity"), t.hyper.value("ema")) == (0.5, 0)
    args = window.training.train_arguments(Path("RUN"))
    assert args[args.index("--preset") + 1] == "paper"
    assert "--lambda-cycle" not in args  # the preset's own value is not restated

    t.hyper.set_value("lambda_cycle", 12.0)
    assert t.preset.currentText() == "Custom"
    assert t.preset_note.text() == "Based on “The paper”, with your changes."
    args = window.training.train_arguments(Path("RUN"))
    assert args[args.index("--preset") + 1] == "paper"
    assert float(args[args.index("--lambda-cycle") + 1]) == 12

    t.hyper.set_value("lambda_cycle", 10.0)  # back to the preset's value: no longer custom
    assert t.preset.currentData() == "paper"
