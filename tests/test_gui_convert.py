"""The Convert page: drop images, the real `cyclestudio translate` worker converts them,
the results list says what happened to each file, and the last one is previewed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import visible
from PIL import Image
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from cyclestudio.gui.main_window import MainWindow
from cyclestudio.gui.model_list import shipped_demo_model
from cyclestudio.project import Project
from cyclestudio.runfolder import model_domains

TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A run folder with a checkpoint of tiny random generators (horse ↔ zebra), made in
    another process so this one never imports torch."""
    run = tmp_path_factory.mktemp("runs") / "run-tiny"
    code = (f"import sys; sys.path.insert(0, {str(TESTS)!r})\n"
            "from pathlib import Path\nfrom model_helpers import make_run\n"
            f"make_run(Path({str(run)!r}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return run


@pytest.fixture
def window(qtbot, tmp_path, tiny_run):
    w = MainWindow(refresh=False)
    qtbot.addWidget(w)
    w.show()
    project = Project.create(tmp_path / "project", a_name="horse", b_name="zebra")
    project.add_run(tiny_run)
    project.save()
    w.open_project(project.folder)
    w.show_page("Convert")
    yield w
    w.close()


def drop(widget, paths: list[Path]) -> None:
    """Drag files/folders from a file manager and drop them on ``widget``."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = widget.rect().center()
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(widget, QDropEvent(pos, Qt.DropAction.CopyAction, mime,
                                              Qt.MouseButton.LeftButton,
                                              Qt.KeyboardModifier.NoModifier))


def test_dropped_images_are_translated_listed_and_previewed_and_a_bad_one_says_why(
        window, qtbot, tmp_path, tiny_run):
    page = window.convert
    assert page.isVisible()
    page.choose_model(tiny_run)  # a run of the project, listed as "Run run-tiny"
    assert page.models.combo.currentText() == "Run run-tiny"
    assert page.direction.currentText() == "A → B (horse → zebra)"
    page.direction.setCurrentIndex(page.direction.findData("b2a"))
    out = tmp_path / "converted"
    page.output.setText(str(out))
    page.format.setCurrentIndex(page.format.findData("png"))
    inputs = tmp_path / "photos"
    inputs.mkdir()
    for i, size in enumerate([(40, 32), (33, 47), (64, 64)]):
        Image.new("RGB", size, (40 * i, 120, 200)).save(inputs / f"photo_{i}.jpg")
    (inputs / "notes.png").write_bytes(b"this is not a png")

    with qtbot.waitSignal(page.job_ended, timeout=120000) as ended:
        drop(page.drop_area, sorted(inputs.iterdir()))
        assert page.stop_button.isEnabled() and not page.setup.isEnabled()
    assert ended.args[0] is False and ended.args[1] == "Conversion finished"
    assert window.notifications[-1] == ("Conversion finished",
                                        "3 translated, 0 skipped, 1 failed")

    outputs = [p.name for p in visible(out)]
    assert outputs == ["photo_0_horse.png", "photo_1_horse.png", "photo_2_horse.png"]
    with Image.open(out / "photo_1_horse.png") as im:
        assert im.size == (33, 47)
    rows = {Path(r.input).name: r for r in page.results.results}
    assert {n: r.status for n, r in rows.items()} == {
        "notes.png": "failed", "photo_0.jpg": "translated", "photo_1.jpg": "translated",
        "photo_2.jpg": "translated"}
    assert rows["notes.png"].reason == "not an image PIL can read"
    bad = page.results.index(list(rows).index("notes.png"), 2)
    assert page.results.data(bad, Qt.ItemDataRole.DisplayRole) == "not an image PIL can read"
    assert page.results.rowCount() == 4
    # The first file that needs attention is selected, so it is in view.
    assert [i.row() for i in page.table.selectionModel().selectedRows()] == [bad.row()]
    assert "3 translated, 0 skipped, 1 failed" in page.status.text()
    assert str(out) in page.output_link.text()
    assert page.bar.value() == page.bar.maximum()
    qtbot.waitUntil(lambda: page.shown_preview() is not None, timeout=10000)
    before, after = page.shown_preview()
    assert before.startswith("before: photo_") and after.startswith("after: photo_")
    assert not page.stop_button.isEnabled() and page.setup.isEnabled()


def test_a_model_that_cannot_be_loaded_is_explained(window, qtbot, tmp_path):
    page = window.convert
    broken = tmp_path / "broken.csmodel"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    page.choose_model(broken)
    assert model_domains(broken) is None
    assert page.direction.currentText() == "A → B (horse → zebra)"  # the project's names
    image = tmp_path / "one.png"
    Image.new("RGB", (20, 20)).save(image)
    with qtbot.waitSignal(page.job_ended, timeout=120000) as ended:
        page.convert([image])
    assert ended.args[:2] == [False, "Conversion failed"]
    assert "translator failed" in page.status.text()
    assert not (page.out_dir / "one_B.png").exists()


def test_the_shipped_demo_model_is_offered_with_its_domain_names(window):
    demo = shipped_demo_model()
    page = window.convert
    if demo is None:  # an install without the model offers the project's runs only
        combo = page.models.combo
        assert combo.findData(None) < 0 and combo.itemText(0).startswith("Run ")
        return
    assert page.models.combo.itemData(0) == str(demo)
    names = model_domains(demo)
    title = f"Demo model ({names[0]} ↔ {names[1]})" if names else None
    assert page.models.combo.itemText(0) == title
    page.models.combo.setCurrentIndex(0)
    assert page.direction.itemText(1) == f"B → A ({names[1]} → {names[0]})"


def test_the_output_folder_defaults_to_the_settings_then_the_project(window, tmp_path):
    page = window.convert
    assert Path(page.output.text()) == window.project.folder / "translated"
    window.settings_page.convert_output.setText(str(tmp_path / "elsewhere"))
    window.settings_page._convert_output_edited()
    window.open_project(window.project.folder)
    assert Path(page.output.text()) == tmp_path / "elsewhere"
    args = page.translate_arguments([tmp_path / "x.png"])
    assert args[args.index("--out") + 1] == str(tmp_path / "elsewhere")
    assert args[-1] == "--events" and "--direction" in args


def test_stop_ends_the_conversion_between_files(window, qtbot, tmp_path, tiny_run):
    page = window.convert
    page.choose_model(tiny_run)
    page.output.setText(str(tmp_path / "out"))
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(150):
        Image.new("RGB", (64, 64), (i, 100, 200)).save(folder / f"{i:03d}.png")
    page.convert([folder])
    qtbot.waitUntil(lambda: page.results.rowCount() >= 1, timeout=120000)
    with qtbot.waitSignal(page.job_ended, timeout=60000) as ended:
        page.stop_button.click()
        assert not page.stop_button.isEnabled()
    assert ended.args[1] == "Conversion stopped"
    done = page.results.rowCount()
    assert 1 <= done < 150
    assert page.status.text().startswith("Stopped:")
    assert page.watch.isEnabled() and page.setup.isEnabled()  # ready for the next job
    assert len(list((tmp_path / "out").rglob("*.png"))) == done  # each one finished


def test_images_dropped_during_a_conversion_are_converted_next(window, qtbot, tmp_path,
                                                               tiny_run):
    page = window.convert
    page.choose_model(tiny_run)
    page.output.setText(str(tmp_path / "out"))
    first, second = tmp_path / "first.png", tmp_path / "second.png"
    Image.new("RGB", (24, 24), (200, 10, 10)).save(first)
    Image.new("RGB", (24, 24), (10, 10, 200)).save(second)
    ends: list[str] = []
    page.job_ended.connect(lambda ok, title, message: ends.append(message))
    page.convert([first])
    page.convert([second])  # the first job is still starting: this one waits
    assert page.pending == [second] and "1 waiting" in page.status.text()
    qtbot.waitUntil(lambda: len(ends) == 2, timeout=120000)
    assert ends == ["1 translated, 0 skipped, 0 failed"] * 2
    assert [p.name for p in visible(tmp_path / "out")] == ["first_zebra.png",
                                                                   "second_zebra.png"]


def test_watching_a_folder_translates_images_as_they_arrive_until_turned_off(
        window, qtbot, tmp_path, tiny_run):
    page = window.convert
    page.choose_model(tiny_run)
    page.output.setText(str(tmp_path / "out"))
    hot = tmp_path / "hot"
    hot.mkdir()
    page.watch_folder.setText(str(hot))
    page.watch.setChecked(True)  # runs `cyclestudio watch MODEL --in hot --out out`
    assert page.runner.args[:4] == ["watch", str(tiny_run), "--in", str(hot)]
    qtbot.waitUntil(lambda: page.status.text().startswith("Watching"), timeout=120000)
    assert not page.drop_area.isEnabled() and page.watch.isEnabled()
    # A camera or scanner writes a file under a temporary name, then renames it.
    Image.new("RGB", (30, 20), (90, 160, 40)).save(hot / "arrived.part", format="PNG")
    (hot / "arrived.part").rename(hot / "arrived.png")
    qtbot.waitUntil(lambda: page.results.rowCount() == 1, timeout=60000)
    assert page.results.results[0].status == "translated"
    assert (tmp_path / "out" / "arrived_zebra.png").exists()
    with qtbot.waitSignal(page.job_ended, timeout=60000) as ended:
        page.watch.setChecked(False)
    assert ended.args[1:] == ["Watching stopped", "1 translated, 0 skipped, 0 failed"]
    assert page.status.text().startswith("Stopped watching")
    assert page.drop_area.isEnabled() and page.watch.isEnabled() and page.setup.isEnabled()


def test_watching_needs_a_folder(window):
    page = window.convert
    page.watch_folder.setText("")
    page.watch.setChecked(True)
    assert not page.watch.isChecked() and not page.runner.running()
    assert "folder to watch" in page.status.text()


def test_a_run_exported_to_onnx_from_the_training_page_is_offered_on_the_convert_page(
        qtbot, tmp_path, tiny_run):
    # Export… runs the real `cyclestudio export` worker; the Convert page then lists the
    # ONNX files beside their run, each offering only the one direction it holds.
    pytest.importorskip("onnxruntime")
    run = tmp_path / "runs" / "run-tiny"
    shutil.copytree(tiny_run, run)  # a copy: the other tests' run stays without exports
    w = MainWindow(refresh=False)
    qtbot.addWidget(w)
    w.show()
    project = Project.create(tmp_path / "project", a_name="horse", b_name="zebra")
    project.add_run(run)
    project.save()
    w.open_project(project.folder)
    w.show_page("Training")
    assert w.training.selected_run() == run
    assert w.training.export_button.isEnabled()
    w.training.open_export()
    dialog = w.training.export_dialog
    dialog.format.setCurrentIndex(dialog.format.findData("onnx"))
    assert dialog.direction.currentData() == "both" and dialog.direction.isEnabled()
    assert dialog.files.text().split("\n") == ["model_a2b.onnx", "model_b2a.onnx"]
    assert dialog.arguments() == ["export", str(run), "--format", "onnx", "--direction", "both",
                                  "--out", str(run / "model"), "--events"]
    dialog.start()
    qtbot.waitUntil(lambda: not dialog.runner.running(), timeout=180_000)
    checks = [dialog.checks.item(i).text() for i in range(dialog.checks.count())]
    assert len(checks) == 8 and all(c.startswith("✓") for c in checks), checks
    assert "Written" in dialog.status.text(), dialog.status.text()
    assert sorted(p.name for p in run.glob("*.onnx")) == ["model_a2b.onnx", "model_b2a.onnx"]
    dialog.reject()

    w.show_page("Convert")  # refreshed by the export
    combo = w.convert.models.combo
    titles = [combo.itemText(i) for i in range(combo.count())]
    assert "Run run-tiny, ONNX b2a (zebra → horse)" in titles, titles
    combo.setCurrentIndex(titles.index("Run run-tiny, ONNX b2a (zebra → horse)"))
    directions = [w.convert.direction.itemData(i) for i in range(w.convert.direction.count())]
    assert directions == ["b2a"]  # the file translates one way only
    args = w.convert.translate_arguments([run])
    assert args[1] == str(run / "model_b2a.onnx") and args[args.index("--direction") + 1] == "b2a"
    w.close()
