"""Reviewing a conversion on the Convert page: any finished file in a split before/after
view (drag, 100 %), a failed file's reason and its place on disk, and a watched folder's
counters, which survive the app closing."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from test_gui_convert import tiny_run, window  # noqa: F401 - fixtures

from cyclestudio.gui import file_manager
from cyclestudio.gui.main_window import MainWindow


def test_any_finished_file_is_compared_in_a_split_view_and_a_failed_one_is_explained(
        window, qtbot, tmp_path, tiny_run, monkeypatch):  # noqa: F811 - fixtures
    page = window.convert
    page.choose_model(tiny_run)
    src = tmp_path / "in"
    src.mkdir()
    for i, size in enumerate(((40, 24), (24, 40), (300, 200))):
        Image.new("RGB", size, (40 * i, 120, 200)).save(src / f"p{i}.png")
    (src / "notes.png").write_text("not a picture")
    page.output.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(page.job_ended, timeout=120000):
        page.convert([src])
    rows = {Path(r.input).name: i for i, r in enumerate(page.results.results)}

    # Any row, not only the last file: selecting it shows that pair.
    page.table.selectRow(rows["p1.png"])
    qtbot.waitUntil(lambda: page.shown_preview() == ("before: p1.png", "after: p1_zebra.png"),
                    timeout=10000)
    view = page.preview.view
    assert (view.before.width(), view.before.height()) == (24, 40)
    page.table.selectRow(rows["p2.png"])
    qtbot.waitUntil(lambda: page.shown_preview() == ("before: p2.png", "after: p2_zebra.png"),
                    timeout=10000)
    # Drag the divider: the input shows left of it, the translation right of it.
    rect = view.image_rect()
    y = int(rect.center().y())
    QTest.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(int(rect.center().x()), y))
    QTest.mouseMove(view, QPoint(int(rect.left() + rect.width() * 0.2), y))
    QTest.mouseRelease(view, Qt.MouseButton.LeftButton,
                       pos=QPoint(int(rect.left() + rect.width() * 0.2), y))
    assert abs(view.split - 0.2) < 0.02
    grab = view.grab().toImage()
    left = grab.pixelColor(int(rect.left() + rect.width() * 0.1), y)
    right = grab.pixelColor(int(rect.left() + rect.width() * 0.6), y)
    assert (left.red(), left.green(), left.blue()) == (80, 120, 200)  # the input's colour
    assert (right.red(), right.green(), right.blue()) != (80, 120, 200)
    # 100 %: one image pixel is one screen pixel.
    page.preview.actual_button.click()
    assert view.scale() == 1.0 and page.preview.zoom_label.text() == "100 %"
    assert view.image_rect().width() == 300
    page.preview.fit_button.click()
    assert view.fit

    # A failed file: its reason, and "Show in folder" opens the file manager on it.
    shown = []
    monkeypatch.setattr(file_manager, "launch", lambda command: shown.append(command) or True)
    page.table.selectRow(rows["notes.png"])
    assert "notes.png failed" in page.detail.text()
    assert "not an image PIL can read" in page.detail.text()
    assert page.show_button.isEnabled()
    assert page.show_selected() in ("selected", "folder")
    if shown:  # the file manager was asked to select the file itself
        assert any(str(src / "notes.png") in part or "notes.png" in part
                   for part in shown[-1])


def test_a_watch_counts_done_failed_and_waiting_and_is_offered_after_a_restart(
        window, qtbot, tmp_path, tiny_run):  # noqa: F811 - fixtures
    page = window.convert
    page.choose_model(tiny_run)
    out, hot = tmp_path / "out", tmp_path / "hot"
    hot.mkdir()
    page.output.setText(str(out))
    page.watch_folder.setText(str(hot))
    page.watch.setChecked(True)
    qtbot.waitUntil(lambda: page.status.text().startswith("Watching"), timeout=120000)
    assert page.counters.isVisible()
    Image.new("RGB", (30, 20), (90, 160, 40)).save(hot / "good.png")
    (hot / "bad.jpg").write_bytes(b"\xff\xd8\xff broken")
    qtbot.waitUntil(lambda: page.results.rowCount() == 2, timeout=60000)
    qtbot.waitUntil(lambda: page.watch_counts.get("failed") == 1, timeout=10000)
    assert page.watch_counts["translated"] == 1 and page.watch_counts["waiting"] == 0
    text = page.counters.text()
    assert ">1</b> done" in text and ">1</b> failed" in text and ">0</b> waiting" in text
    failed = next(r for r in page.results.results if r.status == "failed")
    assert failed.moved_to == str(out / "failed" / "bad.jpg")
    assert failed.location() == failed.moved_to

    # The app closes while watching: the next start offers to watch again.
    window.close()
    qtbot.waitUntil(lambda: not page.runner.running(), timeout=30000)
    again = MainWindow(refresh=False)
    qtbot.addWidget(again)
    again.show()
    again.show_page("Convert")
    page = again.convert
    assert page.resume_banner.isVisible()
    assert str(hot) in page.resume_banner.text.text()
    page.resume_watch()
    assert page.runner.args[:4] == ["watch", str(tiny_run), "--in", str(hot)]
    assert page.runner.args[page.runner.args.index("--out") + 1] == str(out)
    qtbot.waitUntil(lambda: page.status.text().startswith("Watching"), timeout=120000)
    # Turned off on purpose: not offered again.
    with qtbot.waitSignal(page.job_ended, timeout=60000):
        page.watch.setChecked(False)
    assert again.settings.watch == {}
    third = MainWindow(refresh=False)
    qtbot.addWidget(third)
    assert not third.convert.settings.watch and third.convert.resume_banner.isHidden()
    again.close()
    third.close()
