"""Showing a file in the system's file manager, selected where the platform allows."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices


def _launch(command: Sequence[str]) -> bool:
    """Start a helper program detached; True if it started."""
    try:
        subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        return False
    return True


launch: Callable[[Sequence[str]], bool] = _launch  # replaced in tests


def show_in_folder(path: Path) -> str:
    """Open ``path``'s folder in the file manager with ``path`` selected where possible.

    Returns how: "selected" (the file manager was asked to select it), "folder" (its
    folder was opened) or "" (nothing could be opened).
    """
    path = Path(path).absolute()
    if sys.platform == "win32" and launch(["explorer", f"/select,{path}"]):
        return "selected"
    if sys.platform == "darwin" and launch(["open", "-R", str(path)]):
        return "selected"
    if sys.platform.startswith("linux") and shutil.which("gdbus") and launch([
            "gdbus", "call", "--session", "--dest", "org.freedesktop.FileManager1",
            "--object-path", "/org/freedesktop/FileManager1",
            "--method", "org.freedesktop.FileManager1.ShowItems",
            f"['{QUrl.fromLocalFile(str(path)).toString()}']", ""]):
        return "selected"
    folder = path if path.is_dir() else path.parent
    return "folder" if QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))) else ""
