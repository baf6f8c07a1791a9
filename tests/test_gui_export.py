"""Export… from the Training page runs the real `cyclestudio export` worker; the Convert
page then lists the exported ONNX files beside the run, each with its one direction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cyclestudio.gui.main_window import MainWindow
from cyclestudio.project import Project

TESTS = Path(__file__).parent
pytest.importorskip("onnxruntime")


@pytest.fixture
def window(qtbot, tmp_path):
    run = tmp_path / "runs" / "run-tiny"
    code = (f"import sys; sys.path.insert(0, {str(TESTS)!r})\n"
            "from pathlib import Path\nfrom model_helpers import make_run\n"
            f"make_run(Path({str(run)!r}))\n")  # in another process: no torch here
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    w = MainWindow(refresh=False)
    qtbot.addWidget(w)
    w.show()
    project = Project.create(tmp_path / "project", a_name="horse", b_name="zebra")
    project.add_run(run)
    project.save()
    w.open_project(project.folder)
    yield w, run
    w.close()


def test_a_run_exported_to_onnx_from_the_training_page_is_offered_on_the_convert_page(
        window, qtbot):
    w, run = window
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
