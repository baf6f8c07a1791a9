"""What cyclestudio leaves on disk: files with normal permissions, a full disk said in
plain words with the old checkpoint kept, and no temp files left behind by a kill."""

from __future__ import annotations

import errno
import io
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import TINY, make_domain
from model_helpers import make_run
from PIL import Image

from cyclestudio import atomic
from cyclestudio.cli import main
from cyclestudio.core.checkpoint import load_checkpoint, save_checkpoint
from cyclestudio.core.modelfile import export_model
from cyclestudio.errors import UserError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022(monkeypatch):
    old = os.umask(0o022)
    monkeypatch.setattr(atomic, "_UMASK", 0o022, raising=False)  # read once at import
    yield
    os.umask(old)


def test_outputs_model_files_and_configs_get_the_permissions_a_normal_write_gives(
        tmp_path, umask_022):
    run = make_run(tmp_path / "run")  # config.json and a checkpoint, through atomic_write
    model = export_model(run, tmp_path / "m.csmodel")
    Image.new("RGB", (16, 16), (10, 200, 30)).save(tmp_path / "in.png")
    assert main(["translate", str(model), str(tmp_path / "in.png"), "--out",
                 str(tmp_path / "out"), "--device", "cpu"]) == 0
    for written in (run / "config.json", run / "checkpoints" / "latest.pt", model,
                    tmp_path / "out" / "in_zebra.png"):
        assert mode(written) == 0o644, written
    # Replacing a file keeps the mode its owner gave it, as a plain write would.
    os.chmod(model, 0o664)
    export_model(run, model)
    assert mode(model) == 0o664


class _FillsUp(io.RawIOBase):
    """A file on a disk that fills up after ``room`` bytes."""

    def __init__(self, real: io.BufferedWriter, room: int) -> None:
        self.real, self.room = real, room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.real.write(data)

    def fileno(self) -> int:
        return self.real.fileno()

    def flush(self) -> None:
        self.real.flush()

    def close(self) -> None:
        self.real.close()
        super().close()


def test_a_full_disk_during_a_checkpoint_says_so_and_keeps_the_previous_one(
        tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "latest.pt"
    save_checkpoint({"iteration": 1, "nets": {"w": torch.ones(1000)}}, path)
    before = path.read_bytes()
    real_fdopen = os.fdopen
    monkeypatch.setattr(atomic.os, "fdopen",
                        lambda fd, *a, **k: _FillsUp(real_fdopen(fd, *a, **k), 20_000))
    with pytest.raises(UserError) as caught:
        save_checkpoint({"iteration": 2, "nets": {"w": torch.ones(250_000)}}, path)
    message = str(caught.value)
    assert message.startswith(f"the disk is full: cannot write {path}")
    assert "about 1.0 MB needed" in message and "free in" in message
    assert "internal" not in message and "enforce" not in message
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path)["iteration"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["latest.pt"]


def _killed_in_the_middle_of_a_save(target: Path) -> None:
    """Run a process that dies (SIGKILL) while writing ``target`` atomically."""
    code = ("import os, signal, sys\nfrom pathlib import Path\n"
            "from cyclestudio.atomic import atomic_write\n"
            f"with atomic_write(Path({str(target)!r})) as f:\n"
            "    f.write(b'half a checkpoint'); f.flush()\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert done.returncode == -signal.SIGKILL


def test_temp_files_left_by_a_killed_save_are_cleared_when_the_run_starts_again(tmp_path):
    a = make_domain(tmp_path / "a", 4, "warm")
    b = make_domain(tmp_path / "b", 4, "cool", seed=1)
    run = tmp_path / "run"
    assert main(["train", "--a", str(a), "--b", str(b), "--out", str(run), *TINY,
                 "--iterations", "2"]) == 0
    _killed_in_the_middle_of_a_save(run / "checkpoints" / "latest.pt")
    (left,) = [p for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    assert left.name.startswith(".latest.pt.")
    assert main(["train", "--resume", str(run), "--iterations", "3"]) == 0
    assert not [p for p in run.rglob("*.tmp")]
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["iteration"] == 3


def test_a_translation_clears_temp_files_a_killed_translation_left_but_not_a_live_ones(
        tmp_path):
    model = export_model(make_run(tmp_path / "run"), tmp_path / "m.csmodel")
    out = tmp_path / "out"
    out.mkdir()
    _killed_in_the_middle_of_a_save(out / "photo_zebra.png")
    (dead,) = out.iterdir()
    long_ago = time.time() - 3600
    os.utime(dead, (long_ago, long_ago))
    alive = out / f".other_zebra.png.cs{os.getppid()}-abcd1234.tmp"  # a live process's
    alive.write_bytes(b"being written")
    os.utime(alive, (long_ago, long_ago))
    Image.new("RGB", (16, 16)).save(tmp_path / "photo.png")
    assert main(["translate", str(model), str(tmp_path / "photo.png"), "--out", str(out),
                 "--device", "cpu"]) == 0
    assert not dead.exists() and alive.exists()


def test_a_full_disk_in_a_real_training_run_is_one_clear_line(tmp_path):
    """The same through the command line, on a real small file system (where we may)."""
    if sys.platform != "linux" or subprocess.run(
            ["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs a private tmpfs (unshare -rm)")
    a = make_domain(tmp_path / "a", 4, "warm")
    b = make_domain(tmp_path / "b", 4, "cool", seed=1)
    small = tmp_path / "small"
    small.mkdir()
    script = (f"mount -t tmpfs -o size=600k none {small} && "
              f"{sys.executable} -m cyclestudio train --a {a} --b {b} --out {small}/run "
              f"{' '.join(TINY)} --iterations 2")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 2, done.stderr
    assert "error: the disk is full: cannot write" in done.stderr
    assert "Traceback" not in done.stderr and "internal" not in done.stderr
