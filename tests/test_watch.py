"""A watched folder: images already there and images that arrive later are translated."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import Watch, visible
from model_helpers import make_run
from PIL import Image


def _image(path, size=(45, 30), seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype("uint8")).save(path)


@pytest.mark.parametrize("poll", [False, True])
def test_images_dropped_into_a_watched_folder_are_translated(tmp_path, poll):
    model = make_run(tmp_path / "run")
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    (inbox / "old").mkdir(parents=True)
    _image(inbox / "old" / "before.png")
    watch = Watch(str(model), "--in", str(inbox), "--out", str(out), "--device", "cpu",
                  *(["--poll", "--interval", "0.2"] if poll else []))
    try:
        assert watch.until(lambda e: e["event"] == "started")["watching"] == str(inbox)
        first = watch.until(lambda e: e["event"] == "file")
        assert first["status"] == "translated" and first["input"].endswith("before.png")
        assert (out / "old" / "before_zebra.png").exists()  # the tree is mirrored

        # A file copied in under a temporary name and renamed, as browsers and cameras do.
        _image(inbox / ".part.png", size=(61, 17), seed=1)
        os.replace(inbox / ".part.png", inbox / "arrived.png")
        (inbox / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
        (inbox / "Thumbs.db").write_bytes(b"junk")
        results = {}
        while len(results) < 2:
            e = watch.until(lambda e: e["event"] == "file")
            results[e["input"].rsplit("/", 1)[-1]] = e
        assert results["arrived.png"]["status"] == "translated"
        assert Image.open(out / "arrived_zebra.png").size == (61, 17)
        assert results["broken.jpg"]["status"] == "failed" and results["broken.jpg"]["reason"]
        stopped = watch.stop()
        assert (stopped["translated"], stopped["failed"]) == (2, 1)
    finally:
        watch.proc.kill()
    assert not list(out.rglob("*.tmp"))
    assert [p.name for p in out.rglob(".*")] == [".cyclestudio-manifest.jsonl"]


def test_a_restarted_watch_skips_what_it_already_translated(tmp_path):
    model = make_run(tmp_path / "run")
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    _image(inbox / "a.png")
    out.mkdir()
    _image(out / "a_zebra.png", seed=5)
    before = (out / "a_zebra.png").read_bytes()
    watch = Watch(str(model), "--in", str(inbox), "--out", str(out), "--device", "cpu")
    try:
        e = watch.until(lambda e: e["event"] == "file")
        assert e["status"] == "skipped" and "exists" in e["reason"]
        watch.stop()
    finally:
        watch.proc.kill()
    assert (out / "a_zebra.png").read_bytes() == before


def test_pause_and_stop_from_the_app_act_in_the_middle_of_a_batch(tmp_path):
    # Many images waiting at the start settle together and form one batch; `pause` and
    # `stop` must act after the file in hand, not after the whole folder.
    model = make_run(tmp_path / "run")
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    count = 30
    for i in range(count):  # photo-sized: batching does not take them several at a time
        _image(inbox / f"{i:02d}.png", size=(256, 256), seed=i)
    watch = Watch(str(model), "--in", str(inbox), "--out", str(out), "--device", "cpu")
    try:
        watch.until(lambda e: e["event"] == "file")
        watch.send("pause")
        watch.until(lambda e: e["event"] == "paused")
        before_pause = len([e for e in watch.seen if e["event"] == "file"])
        time.sleep(1.5)  # long enough for several more files, were it not paused
        watch.send("resume")
        watch.until(lambda e: e["event"] == "resumed")
        files = [e["event"] for e in watch.seen].index("paused")
        while_paused = [e for e in watch.seen[files:] if e["event"] == "file"]
        stopped = watch.stop()
    finally:
        watch.proc.kill()
    assert before_pause < count
    assert len(while_paused) <= 1  # at most the file already in hand is written
    assert 1 <= stopped["translated"] < count
    written = visible(out, recursive=True)
    assert len(written) == stopped["translated"]
    assert not list(out.rglob("*.tmp"))
    assert not [p for p in written if p.name.endswith(".tmp") or p.name.startswith(".")]


def test_watching_a_missing_folder_is_a_clear_error(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "cyclestudio", "watch", str(make_run(tmp_path / "run")),
         "--in", str(tmp_path / "nope"), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "--in" in done.stderr and "is not a folder" in done.stderr
