"""Scrolling a domain of 10,000 images on the Datasets page: the worst UI-thread stall.

    python benchmarks/gui_scroll.py [--images 10000] [--seconds 10]

Makes the images (small PNGs, on the first run), opens a project with them in domain A
and scrolls the thumbnail grid from top to bottom and back at a steady pace, like a
dragged scroll bar, first while the folder is still being checked, then again with
every thumbnail request queued. A 5 ms QTimer on the UI thread records the gaps
between its ticks; a gap over ~50 ms is a visible hitch.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from harness import UiGaps  # noqa: E402 - benchmarks/ is on sys.path when run
from PIL import Image  # noqa: E402
from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def make_images(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    have = len(list(folder.glob("*.png")))
    for i in range(have, count):
        Image.new("RGB", (64 + i % 32, 48), (i * 7 % 255, i * 13 % 255, 120)).save(
            folder / f"img_{i:05d}.png")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10, help="per pass")
    args = parser.parse_args()
    root = Path(tempfile.gettempdir()) / f"cyclestudio-scroll-{args.images}"
    t0 = time.perf_counter()
    make_images(root / "images", args.images)
    print(f"{args.images} images ready in {time.perf_counter() - t0:.1f} s")
    work = Path(tempfile.mkdtemp(prefix="cyclestudio-scroll-"))
    for name in ("CONFIG", "DATA", "CACHE"):
        os.environ[f"CYCLESTUDIO_{name}_DIR"] = str(work / name.lower())

    from cyclestudio.gui.main_window import MainWindow
    from cyclestudio.project import Project

    app = QApplication([])
    window = MainWindow(refresh=False)
    window.resize(1280, 800)
    window.show()
    project = Project.create(work / "project")
    project.a.paths = [str(root / "images")]
    project.save()

    clock = UiGaps()
    panel = window.datasets.panels["A"]
    started = time.perf_counter()
    clock.start()
    window.set_project(project)
    window.show_page("Datasets")

    def scroll_pass(label: str) -> None:
        bar = panel.view.verticalScrollBar()
        begin = time.perf_counter()

        def step() -> None:  # one scroll step per 60 Hz frame, down then back up
            phase = min(1.0, (time.perf_counter() - begin) / args.seconds)
            fraction = phase * 2 if phase < 0.5 else 2 - phase * 2
            bar.setValue(int(bar.maximum() * fraction))

        stepper = QTimer()
        stepper.setInterval(16)
        stepper.timeout.connect(step)
        clock.reset()
        stepper.start()
        while time.perf_counter() - begin < args.seconds:
            app.processEvents()
            time.sleep(0.001)
        stepper.stop()
        worst, p99 = clock.worst()
        print(f"{label}: scroll range {bar.maximum()} px, {len(clock.gaps)} UI ticks, worst gap "
              f"{worst * 1000:.0f} ms, 99th percentile {p99 * 1000:.0f} ms")

    while panel.model.rowCount() < args.images and time.perf_counter() - started < 60:
        app.processEvents()
        time.sleep(0.005)
    print(f"listed {panel.model.rowCount()} images {time.perf_counter() - started:.1f} s after "
          "opening the project")
    scroll_pass("while checking")
    while panel.scanning and time.perf_counter() - started < 600:
        app.processEvents()
        time.sleep(0.005)
    print(f"all checked {time.perf_counter() - started:.1f} s after opening; "
          f"summary: {panel.summary.text()}")
    scroll_pass("after checking")
    clock.stop()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
