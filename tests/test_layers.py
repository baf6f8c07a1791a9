"""The layers stay apart: core and jobs never import Qt; the command line starts without torch.

Every module is found by walking the packages, so a new module is checked without being
listed here.
"""

import json
import subprocess
import sys
from pathlib import Path

from helpers import package_modules

ROOT = Path(__file__).parent.parent
QT = ("PySide6", "shiboken6", "pyqtgraph")


# Everything below the GUI: the core, the jobs, the shared top-level modules, the plugins.
BELOW_GUI = [
    m for m in package_modules(ROOT / "cyclestudio", "cyclestudio")
    if not m.startswith("cyclestudio.gui") and m != "cyclestudio.cli"
] + package_modules(ROOT / "plugins", "cyclestudio_plugins")


def first_import_of(modules: list[str], banned: tuple[str, ...]) -> list:
    """Import ``modules`` one by one in a fresh interpreter; [module, [banned ones]] for
    the first that brings in a banned package, else []."""
    code = (
        "import json, sys\n"
        f"for m in {modules!r}:\n"
        "    __import__(m)\n"
        f"    bad = sorted(x for x in sys.modules if x.split('.')[0] in {banned!r})\n"
        "    if bad:\n"
        "        print(json.dumps([m, bad[:5]]))\n"
        "        break\n"
        "else:\n"
        "    print(json.dumps([]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_the_walk_finds_every_layer():
    for expected in ("cyclestudio.core.translate", "cyclestudio.jobs.watch",
                     "cyclestudio.plugins", "cyclestudio.project",
                     "cyclestudio_plugins.resnet_generator"):
        assert expected in BELOW_GUI
    assert not [m for m in BELOW_GUI if ".gui" in m]


def test_core_jobs_and_plugins_never_import_qt():
    assert first_import_of(BELOW_GUI, QT) == []


def test_building_the_command_line_does_not_import_torch():
    code = ("from cyclestudio.cli import build_parser; build_parser()\n"
            "import sys; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.split() == ["False"]
