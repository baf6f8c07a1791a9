"""The app's own Start button with the app's own defaults: a new user's first run.

Nothing here is overridden except sizes (network widths, 32 px images): the loader
workers, log interval, device and schedule are what a user gets. Every earlier test
set loader workers to 0, and the default Start deadlocked unseen.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from helpers import make_domain

from cyclestudio import options
from cyclestudio.gui import jobs
from cyclestudio.gui.main_window import MainWindow
from cyclestudio.project import Project


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow()  # plugins and devices come from the real worker queries
    qtbot.addWidget(w)
    w.show()
    project = Project.create(tmp_path / "project", a_name="warm", b_name="cool")
    w.set_project(project)
    w.datasets.panels["A"].add_paths([make_domain(tmp_path / "warm", 8, "warm", size=32)])
    w.datasets.panels["B"].add_paths([make_domain(tmp_path / "cool", 8, "cool", size=32)])
    t = w.training
    w.show_page("Training")
    qtbot.waitUntil(lambda: t.generator.combo.findData("resnet_9blocks") >= 0, timeout=60000)
    qtbot.waitUntil(lambda: t.device.count() > 1, timeout=60000)
    qtbot.waitUntil(lambda: t.hyper.value("size") == 32, timeout=30000)  # fitted to the images
    # Sizes only: the default architectures, made narrow.
    t.generator.form.set_values({"width": 4})
    t.discriminator.form.set_values({"width": 4})
    yield w
    w.close()


@linux_only
@pytest.mark.slow
def test_the_default_start_trains_samples_pauses_resumes_and_stops_with_a_checkpoint(
    window, qtbot
):
    t = window.training
    recipe = options.PRESETS[options.DEFAULT_PRESET]  # the default recipe's networks
    assert t.generator.name() == recipe.settings.get("generator", options.DEFAULT_GENERATOR)
    assert t.discriminator.name() == recipe.settings.get("discriminator",
                                                         options.DEFAULT_DISCRIMINATOR)
    args = t.train_arguments(Path("RUN"))
    # Nothing but sizes is overridden: the job's own defaults apply (workers included).
    assert "--workers" not in args and "--device" not in args
    assert t.hyper.resolved()["workers"] > 0, "the default must decode in workers"

    t.start_button.click()
    run = t.run_dir
    qtbot.waitUntil(lambda: t.state == "running", timeout=60000)
    worker = int(t.runner.process.processId())
    # Progress past iteration 0 is what the deadlock never reached.
    qtbot.waitUntil(lambda: int(t.last_progress.get("iteration") or 0) >= 10, timeout=90000)
    assert len(descendants(worker)) >= 2, "the images are decoded in loader processes"
    assert "images/s" in t.status.line.text() and "ETA" in t.status.line.text()

    t.sample_button.click()
    qtbot.waitUntil(lambda: t.preview.shown() is not None, timeout=60000)
    assert t.preview.shown().parent == run / "samples"

    t.pause_button.click()
    qtbot.waitUntil(lambda: t.state == "paused", timeout=60000)
    paused_at = int(t.last_progress["iteration"])
    assert t.pause_button.text().startswith("Continue")
    t.pause_button.click()
    qtbot.waitUntil(lambda: t.state == "running", timeout=60000)
    qtbot.waitUntil(lambda: int(t.last_progress.get("iteration") or 0) > paused_at,
                    timeout=90000)

    with qtbot.waitSignal(t.run_ended, timeout=90000) as ended:
        t.stop_button.click()
    assert ended.args[0] is True
    stopped = t.runner.terminal_event
    assert stopped["event"] == "stopped" and stopped["iteration"] > paused_at
    assert (run / "checkpoints" / "latest.pt").exists()
    assert not t.error_panel.isVisible()


@linux_only
@pytest.mark.slow
def test_quit_while_training_saves_a_checkpoint_and_leaves_no_process(window, qtbot):
    t = window.training
    t.start_button.click()
    run = t.run_dir
    qtbot.waitUntil(lambda: int(t.last_progress.get("iteration") or 0) >= 10, timeout=90000)
    worker = int(t.runner.process.processId())
    family = {worker} | descendants(worker)
    assert len(family) >= 3

    window.close()
    assert t.runner.terminal_event["event"] == "stopped"
    assert (run / "checkpoints" / "latest.pt").exists()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in family) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in family), "Quit left worker processes behind"
    assert not any(n[0] == "Worker ended" for n in window.notifications)


STUBBORN = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
print('{"event": "started", "child": %d}' % child.pid, flush=True)
time.sleep(600)  # never reads the stop line
"""


@linux_only
def test_a_worker_that_ignores_stop_is_killed_with_its_children_after_the_grace(
    qtbot, monkeypatch, tmp_path
):
    monkeypatch.setattr(jobs, "worker_command", lambda args: [sys.executable, "-c", STUBBORN])
    window = MainWindow(refresh=False)
    qtbot.addWidget(window)
    t = window.training
    started = []
    t.runner.events.connect(started.extend)
    t.runner.start(["train"])
    qtbot.waitUntil(lambda: bool(started), timeout=30000)
    worker, child = int(t.runner.process.processId()), int(started[0]["child"])
    assert alive(worker) and alive(child)

    message = t.shutdown(grace_ms=1500)
    assert "did not stop within 1 s" in message and "checkpoint is kept" in message
    deadline = time.monotonic() + 5
    while (alive(worker) or alive(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(worker) and not alive(child)
    if alive(child):  # pragma: no cover - never leave it running
        os.kill(child, 9)
    window.close()
