"""Training one run with several processes (DDP over gloo on the CPU), as a user drives it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import TINY, cli, events, make_domain, metrics

from cyclestudio.core.checkpoint import load_checkpoint
from cyclestudio.core.data import EpochBatches

HERE = Path(__file__).parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def domains(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return (make_domain(root / "summer", 8, "warm", seed=1),
            make_domain(root / "winter", 8, "cool", seed=2))


def _launch(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cyclestudio", *args], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _until(proc: subprocess.Popen, name: str, seen: list[dict], timeout: float = 180) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(json.loads(line))
        if seen[-1]["event"] == name:
            return seen[-1]
    proc.kill()
    raise AssertionError(f"no {name} event; saw {[e['event'] for e in seen]}: "
                         f"{proc.stderr.read()[-3000:]}")


def test_the_processes_of_a_batch_see_what_one_process_with_the_whole_batch_sees():
    for epoch, start in ((0, 0), (3, 2)):
        one = EpochBatches(10, 7, batch_size=4, seed=5)
        ranks = [EpochBatches(10, 7, batch_size=2, seed=5, rank=r, world_size=2) for r in (0, 1)]
        for sampler in (one, *ranks):
            sampler.epoch, sampler.start = epoch, start
        assert len(one) == len(ranks[0]) == len(ranks[1]) == 2 - start
        for whole, *slices in zip(one, *ranks, strict=True):
            assert [key for part in slices for key in part] == whole
            assert len({ib for _, ib, _ in whole}) > 1  # B is drawn anew for each position


def test_an_epoch_keeps_its_iterations_when_the_number_of_processes_changes():
    # Started with 2 processes (8 images, 4 iterations per epoch), resumed with 1.
    alone = EpochBatches(8, 8, batch_size=1, seed=0, per_epoch=4)
    keys = [key for batch in alone for key in batch]
    assert len(keys) == 4 and len({ia for ia, _, _ in keys}) == 4


def test_gradients_averaged_over_two_processes_equal_one_process_on_the_whole_batch(tmp_path):
    sys.path.insert(0, str(HERE))
    try:
        import ddp_step
    finally:
        sys.path.remove(str(HERE))
    out = tmp_path / "grads.pt"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen(
        [sys.executable, str(HERE / "ddp_step.py"), str(out)],
        env={**os.environ, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2",
             "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"},
        stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    for p in procs:  # each also took a WGAN-GP step (a double backward through DDP)
        assert p.wait(120) == 0, p.stderr.read()
    averaged = torch.load(out, weights_only=True)

    model = ddp_step.CycleGAN(ddp_step.config("lsgan"), torch.device("cpu"), 1)
    model.train_step(*ddp_step.batch())
    whole = ddp_step.gradients(model)
    assert averaged.keys() == whole.keys()
    for name, grad in whole.items():
        torch.testing.assert_close(averaged[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_two_processes_train_one_run_that_a_single_process_resumes(domains, tmp_path):
    a, b = domains
    run = tmp_path / "run"
    proc = _launch(["train", "--a", str(a), "--b", str(b), "--out", str(run), *TINY,
                    "--gpus", "2", "--iterations", "100000", "--log-every", "1",
                    "--checkpoint-every", "3", "--keep-every-epochs", "0", "--events"])
    seen: list[dict] = []
    try:
        _until(proc, "progress", seen)
        proc.stdin.write("sample\npause\n")  # the app's control lines reach rank 0
        proc.stdin.flush()
        _until(proc, "paused", seen)
        proc.stdin.write("resume\n")
        proc.stdin.flush()
        _until(proc, "resumed", seen)
        _until(proc, "progress", seen)
        proc.send_signal(signal.SIGINT)  # Ctrl-C on the launcher: every process stops
        stopped = _until(proc, "stopped", seen, timeout=60)
        assert proc.wait(60) == 0, proc.stderr.read()
    finally:
        proc.kill()
    seen += events(proc.stdout.read())
    names = [e["event"] for e in seen]
    assert names.count("started") == 1 and names[-1] == "stopped"  # rank 0 alone reports
    assert seen[0]["world_size"] == 2
    assert "sample" in names
    progress = [e["iteration"] for e in seen if e["event"] == "progress"]
    assert progress == sorted(set(progress))
    last = stopped["iteration"]
    assert [m["iteration"] for m in metrics(run)] == list(range(1, last + 1))
    assert json.loads((run / "config.json").read_text())["run"]["world_size"] == 2
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest.pt"]
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    assert (state["iteration"], state["world_size"]) == (last, 2)
    assert len(state["rank_states"]) == 2 and state["rank_states"][1]["pools"]["A"]
    assert json.loads((run / "status.json").read_text())["state"] == "stopped"

    # The same run goes on as one process: the schedule keeps its iterations.
    again = cli("train", "--resume", str(run), "--iterations", str(last + 2), "--events")
    assert again.returncode == 0, again.stderr
    evs = events(again.stdout)
    started = next(e for e in evs if e["event"] == "started")
    assert (started["iteration"], started["world_size"]) == (last, 1)
    assert started["iterations_per_epoch"] == 4  # 8 images in global batches of 2
    assert any("resuming with 1 process where the run started with 2" in e["message"]
               for e in evs if e["event"] == "warning")
    assert evs[-1]["event"] == "finished" and evs[-1]["iteration"] == last + 2
    assert [m["iteration"] for m in metrics(run)] == list(range(1, last + 3))
    assert json.loads((run / "config.json").read_text())["run"]["world_size"] == 1


def _rank_pid(launcher: int, rank: int) -> int:
    """The process of ``rank`` among the launcher's children (Linux: from /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if parent == launcher and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    raise AssertionError(f"no process for rank {rank}")


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds ranks through /proc")
def test_a_rank_killed_mid_run_ends_the_run_naming_it(domains, tmp_path):
    a, b = domains
    proc = _launch(["train", "--a", str(a), "--b", str(b), "--out", str(tmp_path / "run"),
                    *TINY, "--gpus", "2", "--iterations", "100000", "--log-every", "1",
                    "--rank-timeout", "10", "--events"])
    seen: list[dict] = []
    try:
        _until(proc, "progress", seen)
        os.kill(_rank_pid(proc.pid, 1), signal.SIGKILL)
        killed = time.time()
        code = proc.wait(60)
        took = time.time() - killed
    finally:
        proc.kill()
    seen += events(proc.stdout.read())
    assert code != 0
    errors = [e for e in seen if e["event"] == "error"]
    assert len(errors) == 1 and "rank 1" in errors[0]["message"], (seen, proc.stderr.read())
    assert took < 45  # the rank timeout (10 s), the shutdown grace, and start-up slack
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "failed" and "rank 1" in status["message"]
