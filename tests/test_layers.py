"""The layers stay apart: core and jobs never import Qt; the command line starts without torch."""

import subprocess
import sys

import pytest


def modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout
    return set(out.split())


@pytest.mark.parametrize("module", [
    "cyclestudio.core.cyclegan", "cyclestudio.core.data", "cyclestudio.core.checkpoint",
    "cyclestudio.core.modelfile", "cyclestudio.core.translate", "cyclestudio.jobs.train",
    "cyclestudio.jobs.translate", "cyclestudio.plugins", "cyclestudio_plugins.resnet_generator",
])
def test_core_and_jobs_never_import_qt(module):
    loaded = modules_after(f"import {module}")
    assert module in loaded
    assert not {m for m in loaded if m.startswith(("PySide6", "shiboken6", "pyqtgraph"))}


def test_building_the_command_line_does_not_import_torch():
    loaded = modules_after("from cyclestudio.cli import build_parser; build_parser()")
    assert "torch" not in loaded
