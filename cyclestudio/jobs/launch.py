"""`cyclestudio train --gpus N`: run one training as N processes through torchrun's launcher.

This process is what the app (or a person at a terminal) talks to: it starts the N
processes with PyTorch's elastic launcher (exactly what `torchrun --standalone
--nproc-per-node N -m cyclestudio train ...` does), and then

- passes its stdin to rank 0, which reads the control lines (`stop`, `pause`, ...);
  rank 0's events reach stdout directly;
- turns Ctrl-C (or SIGTERM) into a `stop` for rank 0, so every process stops together
  after a checkpoint; a second one interrupts the processes, a third kills them;
- when a process fails, reports which one and why (from the notes the processes
  leave, jobs/rank_notes.py, and the launcher's own record of exit codes and signals),
  unless rank 0 has already reported how the run ended, and exits non-zero.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from cyclestudio.errors import UserError
from cyclestudio.jobs import rank_notes
from cyclestudio.runfolder import RunFolder


def check_gpus(count: int, choice: str) -> None:
    """A UserError unless this machine can run ``count`` processes on ``choice``."""
    import torch

    choice = (choice or "auto").lower()
    if choice == "cpu":
        return
    if choice.startswith("cuda:") or choice == "mps":
        raise UserError(f"--gpus {count} with --device {choice}: each process takes its own GPU",
                        "use --device cuda (or auto); pick GPUs with CUDA_VISIBLE_DEVICES")
    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if have == 0:
        raise UserError(f"--gpus {count}: this machine has no CUDA GPU",
                        f"add --device cpu to train with {count} CPU processes (slower than one; "
                        "for trying the multi-process path)")
    if count > have:
        raise UserError(f"--gpus {count}: this machine has {have} CUDA GPU"
                        f"{'s' if have > 1 else ''}", f"use --gpus {have} or fewer")


def _device_choice(args: argparse.Namespace) -> str:
    if args.device:
        return str(args.device)
    if args.resume:
        return str(RunFolder(args.resume).read_config().get("run", {}).get("device") or "auto")
    return "auto"


def _torchrun_config(count: int, argv: list[str]) -> tuple[Any, Any, list[str]]:
    """torchrun's own launch configuration for `--standalone --nproc-per-node count`."""
    from torch.distributed.run import config_from_args, parse_args

    args = parse_args(["--standalone", "--nproc-per-node", str(count), "--max-restarts", "0",
                       "--monitor-interval", "0.5", "-m", "cyclestudio", *argv])
    # What torchrun's run() does for --standalone: a private rendezvous on this machine.
    args.rdzv_backend, args.rdzv_endpoint = "c10d", "localhost:0"
    args.rdzv_id = str(uuid.uuid4())
    config, cmd, cmd_args = config_from_args(args)
    return config, cmd, list(cmd_args)


class _Stdin:
    """A pipe in place of this process's stdin: the ranks inherit it, we feed it."""

    def __init__(self) -> None:
        read, self.write_end = os.pipe()
        self.saved = os.dup(0)
        os.dup2(read, 0)
        os.close(read)
        threading.Thread(target=self._relay, name="stdin-relay", daemon=True).start()

    def _relay(self) -> None:
        while True:
            try:
                chunk = os.read(self.saved, 4096)
            except InterruptedError:
                continue
            except OSError:
                return
            if not chunk:
                return  # our stdin ended; the pipe stays open for stop
            self.send(chunk)

    def send(self, data: bytes) -> None:
        """Write to rank 0's stdin."""
        try:
            os.write(self.write_end, data)
        except OSError:
            pass

    def restore(self) -> None:
        """Put the original stdin back."""
        os.dup2(self.saved, 0)


def launch(args: argparse.Namespace) -> int:
    """Run the training command as ``args.gpus`` processes; the exit code of the run."""
    from cyclestudio.jobs.events import Events

    count = int(args.gpus)
    check_gpus(count, _device_choice(args))
    argv = list(getattr(args, "_argv", None) or sys.argv[1:])
    notes = Path(tempfile.mkdtemp(prefix="cyclestudio-ranks-"))
    os.environ[rank_notes.ENV] = str(notes)
    os.environ[rank_notes.CONTROL_ENV] = "1"
    # Share the CPU cores out between the processes (torchrun would give each one).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // count)))
    for name in ("torch.distributed.elastic", "torch.distributed.run",
                 "torch.distributed.launcher"):
        logging.getLogger(name).setLevel(logging.ERROR)  # we report failures ourselves
    config, cmd, cmd_args = _torchrun_config(count, argv)
    if hasattr(config, "shutdown_timeout"):
        # How long the others get after one process failed: time for a survivor to name
        # the culprit; if it has not by then, we do, from the exit codes.
        config.shutdown_timeout = 15

    stdin = _Stdin()
    outcome: dict[str, Any] = {}
    interrupts = [0]

    def run() -> None:
        from torch.distributed.launcher.api import elastic_launch

        try:
            elastic_launch(config, cmd)(*cmd_args)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            outcome["error"] = exc

    def on_signal(signum: int, _frame: Any) -> None:
        interrupts[0] += 1
        if interrupts[0] == 1:
            stdin.send(b"stop\n")  # rank 0 stops every process after a checkpoint
            if not args.events:
                sys.stderr.write("stopping after a checkpoint (press Ctrl-C again to abort)\n")
            return
        # Again: interrupt the processes themselves (twice: their own "abort at once"),
        # and after that, kill them.
        for pid in rank_notes.pids(notes).values():
            try:
                if interrupts[0] == 2:
                    os.kill(pid, signal.SIGINT)
                    os.kill(pid, signal.SIGINT)
                else:
                    os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    thread = threading.Thread(target=run, name="torchrun", daemon=True)
    try:
        thread.start()
        while thread.is_alive():
            thread.join(0.2)  # the main thread stays free for Ctrl-C
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        stdin.restore()
    try:
        return _conclude(outcome.get("error"), notes, args, Events(args.events),
                         aborted=interrupts[0] > 1)
    finally:
        shutil.rmtree(notes, ignore_errors=True)


def _conclude(error: BaseException | None, notes: Path, args: argparse.Namespace, events: Any,
              aborted: bool) -> int:
    """Report a failed run unless rank 0 did; the launcher's exit code."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    if error is None:
        return 0
    if not isinstance(error, ChildFailedError):
        raise error  # the launcher itself failed (e.g. no free port): a bug to see
    failures = error.failures
    reported = rank_notes.read(notes, rank_notes.TERMINAL) is not None
    rank0 = failures.get(0)
    code = rank0.exitcode if rank0 is not None and rank0.exitcode > 0 else 1
    if aborted:
        code = 130
    if reported:
        return code
    message, hint = describe_failure(failures, notes)
    if aborted:
        message, hint = (f"aborted by a second interrupt ({message})",
                         "the last checkpoint is kept; resume the run")
    folder = args.resume or args.out
    if folder is not None and RunFolder(folder).is_run():
        run = RunFolder(Path(folder).absolute())
        try:
            with run.lock("recording how the run ended"):
                run.write_status("failed", message=message)
        except UserError:
            pass  # held by another process now: it records its own state
    events.emit("error", message=message, hint=hint, kind="rank_failed")
    return code


def describe_failure(failures: dict[int, Any], notes: Path) -> tuple[str, str]:
    """(message, hint) naming the process that failed first and why."""
    by_time = sorted(failures.items(), key=lambda kv: (kv[1].timestamp, kv[1].exitcode >= 0))
    # A process killed by a signal is the cause; the others failed because it went away.
    signalled = [(r, f) for r, f in by_time if f.exitcode < 0]
    rank, failure = (signalled or by_time)[0]
    note = rank_notes.read(notes, f"rank{rank}.json")
    if failure.exitcode < 0:
        return (f"rank {rank} (process {failure.pid}) was killed by signal "
                f"{failure.signal_name()}; the other processes were stopped",
                "out of memory (see `dmesg`), a crash, or someone killed it; resume the run "
                "from its last checkpoint")
    if note:
        message = str(note.get("message", ""))
        if not message.startswith("rank "):
            message = f"rank {rank}: {message}"
        return message, str(note.get("hint", ""))
    return (f"rank {rank} (process {failure.pid}) ended with exit code {failure.exitcode}",
            "its own messages are above; resume the run from its last checkpoint")
