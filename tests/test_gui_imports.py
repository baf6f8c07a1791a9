"""The window must open fast and survive a crashing trainer: the GUI never imports torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers import package_modules

# Every module of the GUI package, so a new page is checked without being listed here.
GUI_MODULES = package_modules(Path(__file__).parent.parent / "cyclestudio" / "gui",
                              "cyclestudio.gui")


def test_importing_the_gui_does_not_import_torch():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in GUI_MODULES)
        + "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')"
        " or m.startswith(('onnx', 'onnxruntime'))"
        " or m.startswith('cyclestudio_plugins') or m == 'cyclestudio.plugins')\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_building_the_main_window_does_not_import_torch(tmp_path):
    # A whole window with a project, pages built, plugin queries started as workers.
    code = (
        "import sys, os\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from cyclestudio.gui.main_window import MainWindow\n"
        "from cyclestudio.project import Project\n"
        f"w = MainWindow(); w.show(); w.set_project(Project.create({str(tmp_path / 'p')!r}))\n"
        "for name in ('Datasets', 'Training', 'Convert', 'Plugins', 'Settings'):\n"
        "    w.show_page(name); app.processEvents()\n"
        "print('torch' in sys.modules)\n"
        "w.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip().splitlines()[:1] == ["False"], out.stdout + out.stderr
