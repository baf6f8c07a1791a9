"""The worst UI-thread stall while a run streams events at full speed.

    python benchmarks/gui_stall.py [--seconds 20] [--mode flood|real]

``flood``: a worker prints progress events (all eight losses) as fast as it can, plus a
sample every 200 events, for ``--seconds``; the Training page plots them all.
``real``: the real `cyclestudio train` at 32 px with --log-every 1 --sample-every 5.
A 5 ms QTimer on the UI thread records the gaps between its ticks; a gap longer than
the interval is a stall (the UI could not react to input for that long).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from harness import UiGaps  # noqa: E402 - benchmarks/ is on sys.path when run
from PIL import Image  # noqa: E402
from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

FLOOD = textwrap.dedent("""
    import json, os, sys, time
    run, seconds = sys.argv[1], float(sys.argv[2])
    os.makedirs(os.path.join(run, "samples"), exist_ok=True)
    from PIL import Image
    Image.new("RGB", (192, 96), (90, 120, 200)).save(os.path.join(run, "samples", "s.png"))
    out = sys.stdout
    out.write(json.dumps({"event": "started", "schema": 1, "run": run, "device": "cpu",
                          "iteration": 0, "epoch": 1, "total_iterations": 10**9}) + "\\n")
    names = ["D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"]
    end, i = time.time() + seconds, 0
    while time.time() < end:
        i += 1
        out.write(json.dumps({"event": "progress", "schema": 1, "iteration": i, "epoch": 1,
            "total_iterations": 10**9, "losses": {n: 1.0 / (1 + i % 97) for n in names},
            "lr": 2e-4, "images_per_s": 1000.0, "eta_s": 99}) + "\\n")
        if i % 200 == 0:
            out.write(json.dumps({"event": "sample", "schema": 1, "iteration": i,
                                  "path": "samples/s.png"}) + "\\n")
    out.write(json.dumps({"event": "stopped", "schema": 1, "iteration": i,
                          "checkpoint": None}) + "\\n")
    out.flush()
""")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--mode", choices=("flood", "real"), default="flood")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cyclestudio-stall-"))
    for name in ("CONFIG", "DATA", "CACHE"):
        os.environ[f"CYCLESTUDIO_{name}_DIR"] = str(work / name.lower())

    from cyclestudio.gui import jobs
    from cyclestudio.gui.main_window import MainWindow
    from cyclestudio.project import Project

    app = QApplication([])
    window = MainWindow()
    window.resize(1280, 800)
    window.show()
    project = Project.create(work / "project")
    for key in ("a", "b"):
        (work / key).mkdir()
        for i in range(6):
            Image.new("RGB", (48, 40), (40 * i, 100 if key == "a" else 200, 90)).save(
                work / key / f"{i}.png")
    project.a.paths, project.b.paths = [str(work / "a")], [str(work / "b")]
    project.save()
    window.set_project(project)
    window.show_page("Training")
    t = window.training
    end = time.monotonic() + 60
    while t.generator.combo.findData("resnet_6blocks") < 0 and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    run = work / "run"
    if args.mode == "flood":
        script = work / "flood.py"
        script.write_text(FLOOD)
        jobs.worker_command = lambda a: [sys.executable, str(script), str(run),
                                         str(args.seconds)]
        command = ["flood"]
    else:
        command = ["train", "--a", str(work / "a"), "--b", str(work / "b"), "--out", str(run),
                   "--generator", "resnet_6blocks", "--generator-option", "width=4",
                   "--discriminator-option", "width=4", "--size", "32", "--load-size", "36",
                   "--iterations", "100000", "--log-every", "1", "--sample-every", "5",
                   "--workers", "0", "--device", "cpu", "--events"]

    clock = UiGaps()
    done = [False]
    t.runner.ended.connect(lambda *a: done.__setitem__(0, True))
    t._launch(command, run)
    clock.start()
    started = time.perf_counter()
    if args.mode == "real":
        QTimer.singleShot(int(args.seconds * 1000), t.stop)
    while not done[0] and time.perf_counter() - started < args.seconds + 60:
        app.processEvents()
        time.sleep(0.001)
    clock.stop()
    worst, p99 = clock.worst(skip=5)  # the first ticks include window start-up
    events_seen = t.plot.points() // 8
    print(f"mode {args.mode}: {events_seen} progress events plotted in "
          f"{time.perf_counter() - started:.1f} s; UI ticks {len(clock.gaps)}; "
          f"worst gap {worst * 1000:.0f} ms, 99th percentile "
          f"{p99 * 1000:.0f} ms (timer interval 5 ms)")
    window.close()
    return 0 if worst < 0.1 else 1


if __name__ == "__main__":
    sys.exit(main())
