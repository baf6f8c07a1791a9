"""A watched folder under real conditions: slow copies are read once, complete; bad files
are moved aside with the reason; a restart translates what changed and nothing else."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import Watch, visible
from model_helpers import make_run
from PIL import Image

from cyclestudio.core.modelfile import export_model
from cyclestudio.jobs.settling import CLOSED, FOUND, MODIFIED, Settler


def png_bytes(seed: int, size: int = 48) -> bytes:
    import io

    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


# -- when a file is complete (a fake clock; real files) -----------------------------------
def test_a_file_growing_with_pauses_longer_than_the_quiet_period_is_waited_out(tmp_path):
    path = tmp_path / "slow.png"
    settler = Settler(settle=1.0)  # polling: no close notifications
    data = png_bytes(1)
    t = 100.0
    for i, chunk in enumerate(np.array_split(np.frombuffer(data, np.uint8), 4)):
        with open(path, "ab") as f:
            f.write(chunk.tobytes())
        if i == 0:
            settler.note(path, FOUND, now=t)
        assert settler.due(now=t) == []
        if i == 0:  # the writer pauses 1.5 s, longer than the quiet period: read too early
            assert settler.due(now=t + 1.2) == [path]
            assert settler.failed_read(path, now=t + 1.2)  # truncated: wait, do not report
        else:
            assert settler.due(now=t + 1.4) == []  # 2 × the pause seen is needed now
        last, t = t, t + 1.5
    assert settler.due(now=last + 2.9) == []
    assert settler.due(now=last + 3.1) == [path]
    settler.finished(path)
    assert settler.waiting() == 0


def test_a_close_after_write_makes_a_file_ready_at_once_and_an_open_one_waits(tmp_path):
    settler = Settler(settle=2.0, closes_notified=True)
    done, writing = tmp_path / "done.png", tmp_path / "writing.png"
    for path in (done, writing):
        path.write_bytes(png_bytes(2))
        settler.note(path, MODIFIED, now=0.0)
        settler.due(now=0.0)
    settler.note(done, CLOSED, now=0.1)
    assert settler.due(now=0.4) == [done]
    assert settler.due(now=20.0) == []  # its writer still has it open: wait for the close
    settler.note(writing, CLOSED, now=20.0)
    assert settler.due(now=20.3) == [writing]


def test_a_broken_file_is_reported_only_after_failing_twice_unchanged(tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff not a jpeg")
    settler = Settler(settle=1.0, closes_notified=True)
    settler.note(path, CLOSED, now=0.0)
    settler.due(now=0.0)
    assert settler.due(now=0.3) == [path]
    assert settler.failed_read(path, now=0.3) is True
    assert settler.due(now=1.0) == []
    assert settler.due(now=1.4) == [path]
    assert settler.failed_read(path, now=1.4) is False  # twice, unchanged: really broken


# -- the real watch job ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    return export_model(make_run(folder / "run"), folder / "tiny.csmodel")


def write_slowly(path: Path, data: bytes, keep_open: bool, pause: float = 1.2) -> None:
    """A slow copy: four chunks with pauses, the file kept open or reopened per chunk."""
    chunks = np.array_split(np.frombuffer(data, np.uint8), 4)
    if keep_open:
        with open(path, "wb") as f:
            for i, chunk in enumerate(chunks):
                f.write(chunk.tobytes())
                f.flush()
                if i < 3:
                    time.sleep(pause)
        return
    for i, chunk in enumerate(chunks):
        with open(path, "ab") as f:
            f.write(chunk.tobytes())
        if i < 3:
            time.sleep(pause)


def files_by_name(watch: Watch) -> dict[str, list[dict]]:
    seen: dict[str, list[dict]] = {}
    for e in watch.seen:
        if e["event"] == "file":
            seen.setdefault(Path(e["input"]).name, []).append(e)
    return seen


def test_slow_copies_bad_files_and_a_restart(model, tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (inbox / "good.png").write_bytes(png_bytes(3))
    (inbox / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    os.symlink("loop.png", inbox / "loop.png")
    args = [str(model), "--in", str(inbox), "--out", str(out), "--device", "cpu",
            "--settle", "1"]
    watch = Watch(*args)
    try:
        watch.until(lambda e: e["event"] == "started")
        writers = [threading.Thread(target=write_slowly, args=(inbox / name, png_bytes(i),
                                                               keep_open))
                   for i, (name, keep_open) in enumerate((("open.png", True),
                                                          ("reopened.png", False)), 10)]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        names = {"good.png", "broken.jpg", "loop.png", "open.png", "reopened.png"}
        watch.until(lambda e: e["event"] == "file" and set(files_by_name(watch)) == names)
        first = watch.stop()
    finally:
        watch.proc.kill()
    seen = files_by_name(watch)
    assert all(len(events) == 1 for events in seen.values()), seen  # each reported once
    for name in ("good.png", "open.png", "reopened.png"):
        assert seen[name][0]["status"] == "translated", seen[name]
    assert (first["translated"], first["failed"]) == (3, 2)
    assert seen["loop.png"][0]["reason"] == "a symbolic link that loops back on itself"
    # Failed files are moved aside, never deleted, each with a note saying why.
    assert sorted(p.name for p in (out / "failed").iterdir()) == [
        "broken.jpg", "broken.jpg.txt", "loop.png", "loop.png.txt"]
    assert "not an image PIL can read" in (out / "failed" / "broken.jpg.txt").read_text()
    assert not os.path.lexists(inbox / "loop.png") and not (inbox / "broken.jpg").exists()
    assert seen["broken.jpg"][0]["moved_to"] == str(out / "failed" / "broken.jpg")

    # While the watch is off, one image changes; on restart only it is translated again.
    (inbox / "good.png").write_bytes(png_bytes(4))
    before = (out / "open_zebra.png").read_bytes()
    watch = Watch(*args, "--poll", "--interval", "0.2")
    try:
        watch.until(lambda e: e["event"] == "file" and len(files_by_name(watch)) == 3)
        second = watch.stop()
    finally:
        watch.proc.kill()
    seen = files_by_name(watch)
    assert seen["good.png"][0]["status"] == "translated"
    for name in ("open.png", "reopened.png"):
        assert (seen[name][0]["status"], seen[name][0]["code"]) == ("skipped", "done_before")
    assert (second["translated"], second["skipped"], second["failed"]) == (1, 2, 0)
    assert (out / "open_zebra.png").read_bytes() == before
    assert [p.name for p in visible(out)] == ["failed", "good_zebra.png", "open_zebra.png",
                                              "reopened_zebra.png"]
