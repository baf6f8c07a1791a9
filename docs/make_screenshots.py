"""Start the real app under Xvfb, run a short training, and save a screenshot of each page.

    python docs/make_screenshots.py [OUT_DIR]      (default: docs/screenshots/)

Needs Xvfb (it is started on a free display when $DISPLAY is unset). Settings and
caches go to a temporary folder, so your own cyclestudio settings are untouched.
The project is made with `cyclestudio demo` when that command exists, else from
generated images.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def start_xvfb() -> subprocess.Popen | None:
    """An Xvfb display for the app on a free display number, unless one is already set."""
    if os.environ.get("DISPLAY"):
        return None
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from harness import start_xvfb as start  # shared with the GUI benchmarks

    xvfb, os.environ["DISPLAY"] = start()
    return xvfb


def generated_domain(folder: Path, count: int, dusk: bool) -> None:
    """Landscapes: a sky gradient, hills and a sun; dusk is warm and dark."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1 if dusk else 0)
    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    for i in range(count):
        sky = np.stack([0.4 + 0.3 * yy, 0.6 + 0.2 * yy, 0.95 - 0.1 * yy], -1)
        if dusk:
            sky = np.stack([0.9 - 0.3 * yy, 0.45 - 0.2 * yy, 0.35 + 0.1 * yy], -1)
        hill = yy > 0.6 + 0.15 * np.sin(xx * rng.uniform(3, 8) + rng.uniform(0, 6))
        ground = np.array([0.2, 0.55, 0.2]) if not dusk else np.array([0.25, 0.15, 0.2])
        cx, cy = rng.uniform(0.2, 0.8), rng.uniform(0.15, 0.4)
        sun = (xx - cx) ** 2 + (yy - cy) ** 2 < 0.006
        img = np.where(hill[..., None], ground, sky)
        img[sun] = [1.0, 0.95, 0.6] if not dusk else [1.0, 0.6, 0.3]
        Image.fromarray((img.clip(0, 1) * 255).astype("uint8")).save(folder / f"{i:03d}.png")


def spin(app, seconds: float, until=None) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until and until()):
        app.processEvents()
        time.sleep(0.02)


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="cyclestudio-shots-"))
    for name in ("CONFIG", "DATA", "CACHE"):
        os.environ[f"CYCLESTUDIO_{name}_DIR"] = str(work / name.lower())
    os.environ.pop("QT_QPA_PLATFORM", None)
    xvfb = start_xvfb()
    try:
        from PySide6.QtWidgets import QApplication

        from cyclestudio.gui.main_window import MainWindow
        from cyclestudio.gui.settings import Settings
        from cyclestudio.gui.theme import apply_theme
        from cyclestudio.project import Project

        app = QApplication([sys.argv[0]])
        app.setStyle("Fusion")
        apply_theme(app, "light")
        folder = work / "landscapes"
        made = subprocess.run([sys.executable, "-m", "cyclestudio", "demo", str(folder)],
                              capture_output=True, text=True)
        if made.returncode == 0 and (folder / "project.json").exists():
            project = Project.load(folder)
        else:
            generated_domain(folder / "day", 24, dusk=False)
            generated_domain(folder / "dusk", 24, dusk=True)
            (folder / "dusk" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
            project = Project.create(folder, name="landscapes", a_name="day", b_name="dusk")
            project.a.paths, project.b.paths = ["day"], ["dusk"]
            project.save()

        window = MainWindow(Settings.load())
        window.resize(1360, 860)
        window.show()
        window.open_project(project.folder)
        spin(app, 20, until=lambda: window.registry.plugins is not None
             and not any(p.scanning for p in window.datasets.panels.values()))
        spin(app, 2)
        window.show_page("Datasets")
        spin(app, 1.5)
        window.grab().save(str(out / "datasets.png"))

        t = window.training
        window.show_page("Training")
        # The default recipe (the fast preset), at the demo's small sizes.
        t.hyper.set_value("size", 64)
        t.hyper.set_value("load_size", 72)
        t.hyper.set_value("iterations", 600)
        t.hyper.set_value("log_every", 2)
        t.hyper.set_value("sample_every", 25)
        t.hyper.set_value("val_every", 30)
        t.device.setCurrentIndex(max(t.device.findData("cpu"), 0))
        t.start()
        spin(app, 180, until=lambda: t.plot.points() >= 8 * 80 and t.state == "running"
             and t.validation_plot.points() >= 4 * 5)
        t.plot.smoothing.setValue(8)
        spin(app, 1)
        window.grab().save(str(out / "training.png"))
        t.stop()
        spin(app, 60, until=lambda: t.state == "idle")

        c = window.convert
        window.show_page("Convert")
        c.refresh_models()  # the demo model if this install ships it, else the run above
        c.models.combo.setCurrentIndex(0)
        inputs = [project.folder / "data" / "testA"]
        if not inputs[0].is_dir():
            inputs = [project.folder / "day"]
        broken = work / "scan_0042.jpg"
        broken.write_bytes(b"\xff\xd8\xff\xe0 cut short")
        c.convert([broken, *inputs])
        spin(app, 120, until=lambda: not c.runner.running() and c.results.rowCount() > 0)
        spin(app, 10, until=lambda: c.shown_preview() is not None)
        spin(app, 1)
        window.grab().save(str(out / "convert.png"))

        window.show_page("Settings")
        spin(app, 1)
        window.grab().save(str(out / "settings.png"))

        window.settings_page.theme.setCurrentIndex(window.settings_page.theme.findData("dark"))
        window.show_page("Training")
        spin(app, 1.5)
        window.grab().save(str(out / "training-dark.png"))

        # The Plugins page with a plugin of the user's own and one that fails to load.
        from cyclestudio.jobs.plugin_templates import write_file
        from cyclestudio.paths import user_plugin_dir

        window.settings_page.theme.setCurrentIndex(window.settings_page.theme.findData("light"))
        write_file("my_generator", "generator", user_plugin_dir())
        (user_plugin_dir() / "fast_attention.py").write_text(
            "import xformers  # not installed here\n", encoding="utf-8")
        loaded = []
        window.registry.plugins_changed.connect(lambda: loaded.append(True))
        window.plugins_page.reload()
        window.show_page("Plugins")
        spin(app, 60, until=lambda: bool(loaded))
        spin(app, 1)
        window.grab().save(str(out / "plugins.png"))
        window.close()
        print("\n".join(str(p) for p in sorted(out.glob("*.png"))))
        return 0
    finally:
        if xvfb is not None:
            xvfb.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
