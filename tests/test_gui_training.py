"""A short real training run started from the Training page: the real `cyclestudio train`."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from cyclestudio.gui.main_window import MainWindow
from cyclestudio.project import Project


def make_domain(folder: Path, count: int, colour: tuple[int, int, int]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        im = Image.new("RGB", (48, 40), colour)
        im.paste((i * 40 % 255, 255 - i * 30, 128), (8 + i, 8, 24 + i, 30))
        im.save(folder / f"{i:02d}.png")
    return folder


@pytest.mark.slow
def test_a_real_run_plots_losses_shows_samples_and_stops_with_a_checkpoint(qtbot, tmp_path):
    window = MainWindow()  # plugins and devices come from real worker queries
    qtbot.addWidget(window)
    window.show()
    project = Project.create(tmp_path / "project", a_name="warm", b_name="cool")
    window.set_project(project)
    window.datasets.panels["A"].add_paths([make_domain(tmp_path / "warm", 6, (200, 80, 40))])
    window.datasets.panels["B"].add_paths([make_domain(tmp_path / "cool", 6, (40, 80, 200))])

    t = window.training
    window.show_page("Training")
    qtbot.waitUntil(lambda: t.generator.combo.findData("resnet_6blocks") >= 0, timeout=60000)
    qtbot.waitUntil(lambda: t.device.findData("cpu") >= 0, timeout=60000)
    t.generator.select("resnet_6blocks", {"width": 4})
    t.discriminator.form.set_values({"width": 4})
    t.hyper.set_value("size", 32)
    t.hyper.set_value("load_size", 36)
    t.hyper.set_value("iterations", 5000)  # far more than we wait for: Stop ends it
    t.hyper.set_value("log_every", 1)
    t.hyper.set_value("sample_every", 5)
    t.hyper.set_value("workers", 0)
    t.device.setCurrentIndex(t.device.findData("cpu"))

    t.start_button.click()
    assert t.state == "starting"
    run = t.run_dir
    assert run is not None and Project.load(project.folder).runs == ["runs/" + run.name]
    qtbot.waitUntil(lambda: t.plot.points() >= 8 * 6, timeout=90000)
    qtbot.waitUntil(lambda: t.preview.shown() is not None, timeout=90000)
    assert t.preview.shown().parent == run / "samples"
    assert set(t.plot.curves) >= {"G_A", "D_A", "cycle_A", "idt_B"}
    assert "cpu" in t.status.line.text() and "images/s" in t.status.line.text()
    assert t.pause_button.isEnabled()

    with qtbot.waitSignal(t.run_ended, timeout=90000) as ended:
        t.stop_button.click()
    assert ended.args[0] is True
    assert t.runner.terminal_event["event"] == "stopped"
    assert (run / "checkpoints" / "latest.pt").exists()
    assert "checkpoint saved" in t.status.line.text()
    assert t.pause_button.isEnabled() and t.pause_button.text() == "Resume run"
    assert window.notifications[-1][0] == "Training stopped"
    assert not t.error_panel.isVisible()
    window.close()
