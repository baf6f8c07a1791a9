"""What a new user meets at the terminal in the first hour: each story a fix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TINY, cli, make_domain, visible
from model_helpers import make_run
from PIL import Image

from cyclestudio.core.modelfile import export_model


@pytest.fixture(scope="module")
def domains(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return make_domain(root / "a", 6, "warm", seed=1), make_domain(root / "b", 6, "cool", seed=2)


def test_an_abbreviated_flag_is_refused_not_guessed(domains, tmp_path):
    a, b = domains
    done = cli("train", "--a", str(a), "--b", str(b), "--out", str(tmp_path / "run"), *TINY,
               "--epoch", "3")
    assert done.returncode == 2
    assert "unrecognized arguments: --epoch 3" in done.stderr
    assert not (tmp_path / "run").exists()
    listing = cli("plugins", "list", "--js")
    assert listing.returncode == 2 and "--js" in listing.stderr


def test_the_app_without_a_display_says_what_to_do(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    if not sys.platform.startswith("linux"):
        pytest.skip("only X11/Wayland systems can lack a display")
    done = subprocess.run([sys.executable, "-m", "cyclestudio"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "no display" in done.stderr and "DISPLAY" in done.stderr
    assert "subcommands" in done.stderr and "xcb" not in done.stderr


def _timed_events(args: list[str]) -> list[tuple[float, dict]]:
    """Run a job with --events and note when each event arrived."""
    proc = subprocess.Popen([sys.executable, "-m", "cyclestudio", *args, "--events"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    arrived = []
    assert proc.stdout is not None
    for line in proc.stdout:
        arrived.append((time.monotonic(), json.loads(line)))
    assert proc.wait(120) == 0
    return arrived


def test_speed_after_a_resume_counts_only_this_sessions_iterations(domains, tmp_path):
    a, b = domains
    run = tmp_path / "run"
    first = cli("train", "--a", str(a), "--b", str(b), "--out", str(run), *TINY,
                "--iterations", "60", "--epochs", "20")
    assert first.returncode == 0, first.stderr
    arrived = _timed_events(["train", "--resume", str(run), "--iterations", "70",
                             "--log-every", "10"])
    started = next(t for t, e in arrived if e["event"] == "started")
    t, progress = next((t, e) for t, e in arrived if e["event"] == "progress")
    assert progress["iteration"] == 70
    # 10 iterations were done in this process before that event arrived; counting the
    # 60 of the earlier session made the rate 7 times too high and the ETA 7 times short.
    most = 10 / (t - started)
    assert progress["images_per_s"] <= 2 * most


def test_the_stop_message_names_the_real_run_folder(domains, tmp_path):
    a, b = domains
    run = tmp_path / "my run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cyclestudio", "train", "--a", str(a), "--b", str(b), "--out",
         str(run), *TINY, "--iterations", "100000", "--log-every", "1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (run / "metrics.jsonl").exists() and time.time() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        proc.kill()
    err = proc.stderr.read()
    assert f"continue with: cyclestudio train --resume '{run}'" in err


def test_the_demos_next_steps_work_from_any_folder(tmp_path):
    done = cli("demo", "project", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    folder = (tmp_path / "project").resolve()
    assert f"cd {folder}" in done.stdout
    translate = next(line for line in done.stdout.splitlines() if "translate" in line
                     and ".csmodel" in line)
    for word in translate.split()[2:]:
        if not word.startswith("-"):
            assert Path(word).is_absolute(), translate


def test_ctrl_c_during_translate_exits_non_zero_and_says_how_many_are_left(tmp_path):
    model = export_model(make_run(tmp_path / "run"))
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for i in range(400):
        Image.new("RGB", (64, 64), (i % 255, 80, 160)).save(inputs / f"{i:03d}.png")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cyclestudio", "translate", str(model), str(inputs), "--out",
         str(tmp_path / "out"), "--precision", "fp32"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (
            (tmp_path / "out").is_dir() and visible(tmp_path / "out")
        ):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    finally:
        proc.kill()
    out = proc.stdout.read()
    done = len(visible(tmp_path / "out"))
    assert done < 400, "the batch finished before the interrupt: make it longer"
    assert code == 130
    assert f"{400 - done} of 400 inputs were not translated" in out
