"""`translate --ray`: the same batch on a Ray cluster (a local 2-CPU one) as on this machine."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import cli, events
from model_helpers import make_run
from PIL import Image

from cyclestudio.cli import main
from cyclestudio.core.modelfile import export_model
from cyclestudio.jobs.manifest import NAME as MANIFEST

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    """One local Ray instance for the module, with 2 CPUs (the translate job joins it)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture
def open_stdin(monkeypatch):
    """A stdin that stays open (as the app's pipe does) for jobs run with --events."""
    read, write = os.pipe()
    with os.fdopen(read) as reader:
        monkeypatch.setattr("sys.stdin", reader)
        yield
        os.close(write)


def _folder(root: Path) -> Path:
    """Good images (in a subfolder too) and bad files, as users' folders have."""
    rng = np.random.default_rng(0)
    src = root / "in"
    (src / "deeper").mkdir(parents=True)
    for i in range(5):
        pixels = (rng.random((24 + 4 * i, 32, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(src / f"good{i}.png")
    Image.fromarray((rng.random((40, 30, 3)) * 255).astype(np.uint8)).save(
        src / "deeper" / "photo.jpg", quality=90)
    (src / "empty.png").write_bytes(b"")
    (src / "text.jpg").write_text("this is not an image")
    whole = (src / "good0.png").read_bytes()
    (src / "deeper" / "truncated.png").write_bytes(whole[: len(whole) // 2])
    return src


def _psnr(a: Path, b: Path) -> float:
    x = np.asarray(Image.open(a), dtype=np.float64)
    y = np.asarray(Image.open(b), dtype=np.float64)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def test_ray_gives_the_local_outputs_and_names_the_bad_files(cluster, tmp_path, capsys,
                                                             open_stdin):
    model = export_model(make_run(tmp_path / "run"))
    src = _folder(tmp_path)
    local_out, ray_out = tmp_path / "local", tmp_path / "ray"
    capsys.readouterr()
    assert main(["translate", str(model), str(src), "--out", str(local_out), "--events"]) == 1
    local = {Path(e["input"]).name: e for e in events(capsys.readouterr().out)
             if e["event"] == "file"}
    # Restarting a batch: the outputs already there are skipped, the rest translated.
    shutil.copytree(local_out, ray_out)
    kept = ray_out / "good1_zebra.png"
    for out in ray_out.rglob("*.*"):
        if out != kept:
            out.unlink()

    done = cli("translate", str(model), str(src), "--out", str(ray_out), "--ray", cluster,
               "--events")
    assert done.returncode == 1, done.stderr  # as locally: some inputs failed
    evs = events(done.stdout)
    assert evs[0]["event"] == "started" and evs[0]["device"].startswith("ray: 2 CPU workers")
    assert evs[-1]["event"] == "finished"
    assert (evs[-1]["translated"], evs[-1]["skipped"], evs[-1]["failed"]) == (5, 1, 3)
    files = {Path(e["input"]).name: e for e in evs if e["event"] == "file"}
    assert files.keys() == local.keys()
    assert files["good1.png"]["code"] == "output_exists"
    for name in ("empty.png", "text.jpg", "truncated.png"):
        assert files[name]["status"] == "failed" and files[name]["output"] is None
        assert files[name]["reason"] == local[name]["reason"]  # named with the same reason
    progress = [e["done"] for e in evs if e["event"] == "progress"]
    assert progress == list(range(1, 10))
    for name, event in local.items():
        if event["status"] != "translated":
            continue
        mine, theirs = Path(event["output"]), ray_out / Path(event["output"]).relative_to(
            local_out)
        assert theirs.is_file(), name
        same = mine.read_bytes() == theirs.read_bytes()
        assert same or _psnr(mine, theirs) > 50, name


def test_without_ray_installed_the_flag_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    model = export_model(make_run(tmp_path / "run"))
    code = main(["translate", str(model), str(_folder(tmp_path)), "--out", str(tmp_path / "out"),
                 "--ray"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--ray needs Ray" in err and 'pip install "cyclestudio[ray]"' in err
    assert not (tmp_path / "out").exists()


def _ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        try:
            pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        chain.append(pid)
    return chain


def _model_worker() -> int | None:
    """A model actor's process in this test's Ray instance (its processes descend from us)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"MapWorker" in title and os.getpid() in _ancestors(int(entry.name)):
                return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds Ray's workers in /proc")
def test_files_of_a_worker_that_dies_are_translated_by_another(cluster, tmp_path):
    model = export_model(make_run(tmp_path / "run"))
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(1)
    for i in range(40):
        Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(src / f"{i}.png")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cyclestudio", "translate", str(model), str(src), "--out",
         str(tmp_path / "out"), "--ray", cluster, "--events"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen, killed = [], None
    try:
        for line in proc.stdout:
            seen.append(json.loads(line))  # Ray's own messages must not reach stdout
            if seen[-1]["event"] == "file" and killed is None:
                killed = _model_worker()
                assert killed is not None
                os.kill(killed, signal.SIGKILL)
        assert proc.wait(120) == 0, proc.stderr.read()
    finally:
        proc.kill()
    files = [e for e in seen if e["event"] == "file"]
    assert sorted(Path(e["input"]).name for e in files) == sorted(f"{i}.png" for i in range(40))
    assert all(e["status"] == "translated" for e in files)
    assert seen[-1]["event"] == "finished" and seen[-1]["translated"] == 40
    # The killed worker may have left the file it was writing as a temp file of its own
    # (named with its pid): the next translation into the folder clears it once it is
    # old (atomic.remove_stale_temps). Nothing else is there.
    written = sorted(p.name for p in (tmp_path / "out").iterdir()
                     if not p.name.endswith(f".cs{killed}-{p.name.rsplit('-', 1)[-1]}"))
    assert written == sorted([MANIFEST] + [f"{i}_zebra.png" for i in range(40)])
