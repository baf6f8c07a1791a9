"""How long `cyclestudio` takes until its main window is on screen (under Xvfb).

    python benchmarks/gui_startup.py [--runs 5]

Starts Xvfb when $DISPLAY is unset; settings go to a temporary folder holding a small
project as the last project, so the app opens straight onto it. The clock runs from
starting the process until X reports the window viewable (polled with xwininfo).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import start_xvfb  # noqa: E402 - benchmarks/ is on sys.path when run
from PIL import Image

from cyclestudio.gui.settings import Settings
from cyclestudio.project import Project


def viewable_window(env: dict[str, str]) -> bool:
    tree = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True,
                          env=env).stdout
    for match in re.finditer(r"^\s+(0x[0-9a-f]+) \"[^\"]*cyclestudio\"", tree, re.M):
        info = subprocess.run(["xwininfo", "-id", match.group(1)], capture_output=True,
                              text=True, env=env).stdout
        if "IsViewable" in info:
            return True
    return False


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cyclestudio-startup-"))
    env = dict(os.environ)
    for name in ("CONFIG", "DATA", "CACHE"):
        env[f"CYCLESTUDIO_{name}_DIR"] = os.environ[f"CYCLESTUDIO_{name}_DIR"] = str(
            work / name.lower())
    env.pop("QT_QPA_PLATFORM", None)
    xvfb = None
    if not env.get("DISPLAY"):
        xvfb, env["DISPLAY"] = start_xvfb()
    try:
        project = Project.create(work / "project", a_name="day", b_name="dusk")
        for key in ("a", "b"):
            (work / "project" / key).mkdir()
            for i in range(50):
                Image.new("RGB", (64, 64), (i * 5, 100, 200)).save(work / "project" / key /
                                                                   f"{i}.png")
        project.a.paths, project.b.paths = ["a"], ["b"]
        project.save()
        settings = Settings()
        settings.remember_project(project.folder)
        settings.save()
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            log = open(work / "app.log", "w")  # noqa: SIM115 - closed below
            # Its own process group, so the plugin/device query workers it starts end
            # with it instead of importing torch into the next run's measurement.
            app = subprocess.Popen([sys.executable, "-m", "cyclestudio"], env=env,
                                   stdout=log, stderr=log, start_new_session=True)
            while not viewable_window(env):
                if app.poll() is not None or time.perf_counter() - start > 30:
                    os.killpg(app.pid, signal.SIGKILL)
                    raise SystemExit("the window never appeared:\n"
                                     + (work / "app.log").read_text()[-2000:])
                time.sleep(0.02)
            times.append(time.perf_counter() - start)
            os.killpg(app.pid, signal.SIGTERM)
            app.wait(10)
            log.close()
            time.sleep(0.5)
        print(f"window visible after: median {statistics.median(times):.2f} s, "
              f"worst {max(times):.2f} s, all {', '.join(f'{t:.2f}' for t in times)}")
        return 0 if max(times) <= 2.5 else 1
    finally:
        if xvfb is not None:
            xvfb.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
