"""A run folder has one owner at a time, says how its last process ended, and a run that
never reached a checkpoint can be started again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TINY, cli, make_domain, metrics

from cyclestudio.core.config import OptimConfig
from cyclestudio.core.schedule import fit_schedule
from cyclestudio.runfolder import RunFolder, model_domains, read_model_header


@pytest.fixture(scope="module")
def domains(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return make_domain(root / "a", 6, "warm", seed=1), make_domain(root / "b", 6, "cool", seed=2)


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cyclestudio", *args, "--events"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for(proc: subprocess.Popen, event: str, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    assert proc.stdout is not None
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        e = json.loads(line)
        if e["event"] == event:
            return e
    raise AssertionError(f"no {event} event; stderr: {proc.stderr.read() if proc.stderr else ''}")


def test_a_second_process_on_a_running_run_is_refused_and_names_the_first(domains, tmp_path):
    a, b = domains
    run = tmp_path / "run"
    first = start("train", "--a", str(a), "--b", str(b), "--out", str(run), *TINY,
                  "--iterations", "100000", "--log-every", "1", "--checkpoint-every", "5")
    try:
        wait_for(first, "checkpoint")
        assert RunFolder(run).state() == "running"
        assert RunFolder(run).holder()["pid"] == first.pid
        second = cli("train", "--resume", str(run), "--iterations", "100")
        assert second.returncode == 2
        line = second.stderr.splitlines()[0]
        assert f"is in use by another cyclestudio process (pid {first.pid}" in line
        again = cli("train", "--a", str(a), "--b", str(b), "--out", str(run), *TINY)
        assert again.returncode == 2 and "already holds a run" in again.stderr
        first.stdin.write("stop\n")
        first.stdin.flush()
        assert wait_for(first, "stopped")["run"] == str(run)
        assert first.wait(60) == 0
    finally:
        first.kill()
    assert RunFolder(run).state() == "stopped"
    iterations = [m["iteration"] for m in metrics(run)]
    assert iterations == sorted(set(iterations)), "no iteration logged twice or backwards"


def test_a_killed_run_reads_as_crashed_and_resumes_without_a_stale_lock(domains, tmp_path):
    a, b = domains
    run = tmp_path / "run"
    proc = start("train", "--a", str(a), "--b", str(b), "--out", str(run), *TINY,
                 "--iterations", "100000", "--checkpoint-every", "3")
    try:
        wait_for(proc, "checkpoint")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert RunFolder(run).state() == "crashed"
    resumed = cli("train", "--resume", str(run), "--iterations", "8")
    assert resumed.returncode == 0, resumed.stderr
    assert RunFolder(run).state() == "finished"
    assert RunFolder(run).holder() is None


def test_a_run_killed_before_its_first_checkpoint_can_be_started_again(domains, tmp_path):
    a, b = domains
    run = tmp_path / "run"
    args = ["train", "--a", str(a), "--b", str(b), "--out", str(run), *TINY]
    long = ["--iterations", "100000", "--checkpoint-every", "100000", "--epochs", "100000",
            "--log-every", "1"]
    proc = start(*args, *long)
    try:
        wait_for(proc, "progress")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert (run / "config.json").exists() and not RunFolder(run).resumable()
    assert RunFolder(run).state() == "crashed"
    again = cli(*args, "--iterations", "4")
    assert again.returncode == 0, again.stderr
    assert [m["iteration"] for m in metrics(run)] == [4]  # the first attempt's lines are gone

    # The same through --resume: nothing to continue, so it starts from its config.
    run2 = tmp_path / "run2"
    proc = start(*[run2.as_posix() if x == str(run) else x for x in args], *long)
    try:
        wait_for(proc, "started")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    resumed = cli("train", "--resume", str(run2), "--iterations", "3", "--events")
    assert resumed.returncode == 0, resumed.stderr
    assert "has no checkpoint yet: starting it again" in resumed.stdout


@pytest.mark.parametrize("flag,value", [("--size", "64"), ("--a", "elsewhere"),
                                        ("--generator-option", "width=8"),
                                        ("--lambda-cycle", "5")])
def test_resume_refuses_a_setting_it_cannot_change_and_names_it(tmp_path, flag, value):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    done = cli("train", "--resume", str(run), flag, value)
    assert done.returncode == 2
    first = done.stderr.splitlines()[0]
    assert f"{flag} cannot change when resuming" in first
    assert "--iterations" in done.stderr  # the hint lists what a resume takes


def test_the_schedule_stretches_to_reach_the_iterations_asked_for():
    paper = OptimConfig()
    fitted = fit_schedule(paper, 100, 50_000, resumed=False)
    assert (fitted.optim.epochs, fitted.optim.decay_epochs) == (500, 250) and not fitted.warning
    assert fit_schedule(paper, 100, 10_000, resumed=False).optim == paper  # never shortened
    given = fit_schedule(OptimConfig(epochs=4, decay_epochs=1), 100, 1_000, resumed=False,
                         epochs_given=True, decay_given=True)
    assert (given.optim.epochs, given.optim.decay_epochs) == (10, 2)  # the same quarter
    assert "--epochs 4 is 400 iterations" in given.warning
    resumed = fit_schedule(OptimConfig(epochs=4, decay_epochs=2), 100, 1_000, resumed=True)
    assert (resumed.optim.epochs, resumed.optim.decay_epochs) == (10, 2)
    assert "extending the schedule" in resumed.warning


def test_model_headers_are_read_without_torch(tmp_path):
    from model_helpers import make_run

    from cyclestudio.core.modelfile import export_model

    model = export_model(make_run(tmp_path / "run"))
    header = read_model_header(model)
    assert header["generator"] == "resnet_6blocks" and header["a_name"] == "horse"
    assert model_domains(model) == ("horse", "zebra")
    assert model_domains(tmp_path / "run") == ("horse", "zebra")
    (tmp_path / "junk.csmodel").write_bytes(b"\x00" * 20)
    assert model_domains(tmp_path / "junk.csmodel") is None
    script = ("import sys; from cyclestudio.runfolder import read_model_header; "
              f"read_model_header({str(model)!r}); "
              "assert 'torch' not in sys.modules and 'safetensors' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", script]).returncode == 0


def test_truncating_metrics_keeps_earlier_lines_and_skips_a_torn_one(tmp_path):
    folder = RunFolder(tmp_path)
    for i in (10, 20, 30):
        folder.append_metrics({"iteration": i, "losses": {"G_A": 1.0}})
    with open(folder.metrics, "a") as f:
        f.write('{"iteration": 40, "los')  # a crash mid-line
    folder.truncate_metrics(20)
    assert [r["iteration"] for r in folder.read_metrics()] == [10, 20]
    assert Path(folder.metrics).read_text().endswith("\n")
