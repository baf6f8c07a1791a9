"""One process of a run trained by several: what differs from training alone.

torchrun (or `cyclestudio train --gpus N`) runs `cyclestudio train` once per process.
Each joins the process group, checks its set-up with the others (one bad process
stops all, with its reason), trains the same steps on its own slice of every batch,
and agrees with the others at every iteration on stop, pause and sample commands. Only
rank 0 writes the run folder (samples, metrics, checkpoints, model file, status, lock)
and emits events; the others read the run folder but never write it. A watchdog
(jobs/rank_watchdog.py) names a process that died or hangs, so no process waits forever.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from cyclestudio.errors import UserError
from cyclestudio.jobs import rank_notes
from cyclestudio.jobs.training_loop import StepLoop, Training
from cyclestudio.protocol import PAUSE, RESUME, SAMPLE, STOP, TERMINAL
from cyclestudio.runfolder import RunFolder

# The torch.distributed process-group timeout, in --rank-timeouts: the watchdog
# names a stuck process well before a collective itself times out.
COLLECTIVE_FACTOR = 4


class SetUpFailed(UserError):
    """Another process's set-up failed: rank 0 reports it, the others end quietly."""


class RankFolder(RunFolder):
    """A run folder as the processes other than rank 0 see it: read, never written."""

    def write_status(self, state: str, **fields: Any) -> None:
        """Rank 0 records the run's state."""

    def append_metrics(self, line: dict[str, Any]) -> None:
        """Rank 0 logs the (averaged) losses."""

    def truncate_metrics(self, iteration: int) -> None:
        """Rank 0 trims the metrics of a resumed run."""

    def lock(self, purpose: str = "train") -> Any:
        """Rank 0 holds the run's lock for all of its processes."""
        return nullcontext()


class Silent:
    """The events of processes other than rank 0: nobody reads them."""

    def emit(self, event: str, **fields: Any) -> None:
        """Drop the event."""


class NotedEvents:
    """Rank 0's events, noting for the launcher when the run's last event has gone out."""

    def __init__(self, events: Any) -> None:
        self.events = events
        self.json_lines = bool(events.json_lines)

    def emit(self, event: str, **fields: Any) -> None:
        """Send the event; after a terminal one, tell the launcher it need not report."""
        self.events.emit(event, **fields)
        if event in TERMINAL:
            rank_notes.write(rank_notes.TERMINAL, {"event": event})


class SyncedControl:
    """Control commands agreed by every process at every iteration.

    Rank 0 reads the app's control lines; any process may have been asked to stop by a
    signal (torchrun passes Ctrl-C on to all of them). Each poll is one small
    collective, so every process obeys the same commands at the same iteration.
    """

    def __init__(self, control: Any, ranks: Any, watch: Any) -> None:
        self.control, self.ranks, self.watch = control, ranks, watch
        self.local: list[str] = []  # rank 0's commands the others need not know (typos)

    def _agree(self, commands: list[str]) -> list[str]:
        from cyclestudio.core.distributed import any_flags

        shared = (STOP, PAUSE, SAMPLE, RESUME)
        wanted = [c in commands for c in shared]
        wanted[0] = wanted[0] or self.control.stop_requested
        agreed = any_flags(wanted, self.ranks)
        self.watch.tick()
        return [c for c, yes in zip(shared, agreed, strict=True) if yes]

    def poll(self) -> list[str]:
        """The commands every process obeys now (rank 0's typos only on rank 0)."""
        mine = self.control.poll()
        unknown = [c for c in mine if c not in (STOP, PAUSE, SAMPLE, RESUME)]
        agreed = self._agree(mine)
        # A stop wins over everything else this iteration.
        return ([STOP] if STOP in agreed else agreed) + unknown

    def wait(self, timeout: float) -> str | None:
        """Wait (while paused) for resume or stop, together."""
        command = self.control.wait(timeout) if self.ranks.is_main else None
        agreed = self._agree([command] if command else [])
        for wanted in (STOP, RESUME):
            if wanted in agreed:
                return wanted
        return None

    @property
    def stop_requested(self) -> bool:
        return self.control.stop_requested


class DistributedTraining(Training):
    """A run trained by several processes: this process's part of it."""

    def setup(self, ranks: Any, device: Any, watch: Any) -> None:
        """Join this process's place in the run."""
        self.ranks, self.rank, self.world_size = ranks, ranks.rank, ranks.world_size
        self.main = ranks.is_main
        self._device, self.watch = device, watch
        if not self.main:
            self.folder = RankFolder(self.folder.path)
        self.control = SyncedControl(self.control, ranks, watch)

    def device(self) -> Any:
        return self._device

    def prepare(self, model: Any) -> None:
        from cyclestudio.core.distributed import restore_rank_state, wrap

        if self.state is not None:
            restore_rank_state(model, self.state, self.ranks)
        for warning in wrap(model, self.ranks):
            self.events.emit("warning", message=warning)

    def make_loop(self, model: Any, total: int, per_epoch: int, images: dict[str, int],
                  samples: tuple[Any, Any], validator: Any = None) -> StepLoop:
        return DistributedStepLoop(self, model, total, per_epoch, images, samples, validator)


class DistributedStepLoop(StepLoop):
    """The bookkeeping around steps, with rank 0 writing and every process agreeing."""

    def __init__(self, training: DistributedTraining, *args: Any) -> None:
        super().__init__(training, *args)
        self.ranks, self.watch, self.main = training.ranks, training.watch, training.main

    def batches(self, loader: Any) -> Iterator[Any]:
        for batch in loader:
            self.watch.entered(self.iteration + 1)
            yield batch

    def record(self, losses: dict[str, float]) -> None:
        """Add one step's losses; a non-finite loss on any process ends the run everywhere."""
        from cyclestudio.core.distributed import any_flags

        finite = all(math.isfinite(v) for v in losses.values())
        if not any_flags([not finite], self.ranks)[0] or not finite:
            super().record(losses)  # raises here when this process's own loss is the bad one
            return
        self.iteration += 1
        raise UserError(
            f"training diverged at iteration {self.iteration}: a loss is not finite on another "
            "process", "lower the learning rate (--lr), or try --gan-loss lsgan; resume from "
            "the last checkpoint")

    def after_step(self) -> int | None:
        self.watch.tick()
        return super().after_step()

    def log(self) -> None:
        """Average the losses over the processes; rank 0 writes and reports them."""
        from cyclestudio.core.distributed import mean_losses

        if not self.count:
            return
        self.sums = mean_losses(self.sums, self.ranks)
        if self.main:
            super().log()
        else:
            self.sums, self.count = {}, 0

    def sample(self) -> None:
        if self.main:
            with self.watch.busy("making a sample grid"):
                super().sample()
        self.last_sample = self.iteration

    def validate(self) -> None:
        """Rank 0 alone translates the held-out images (no collectives: the others go on
        to the next step and wait for it there)."""
        if self.main:
            with self.watch.busy("validating"):
                super().validate()
        self.last_validation = self.iteration

    def save_best(self) -> None:
        if self.main:
            super().save_best()

    def checkpoint(self, name: str = "latest.pt", announce: bool = True) -> str:
        from cyclestudio.core.distributed import gather_rank_states

        self._rank_states = gather_rank_states(self.model, self.ranks)
        if not self.main:
            return self.folder.checkpoint_name(name)
        with self.watch.busy("writing a checkpoint"):
            return super().checkpoint(name, announce)

    def extra_state(self) -> dict[str, Any]:
        return {"rank_states": self._rank_states}

    def pause(self) -> int | None:
        """Wait for resume or stop, all processes together (the GPUs keep their memory:
        DDP's buffers stay on them)."""
        self.events.emit("paused", iteration=self.iteration)
        while True:
            command = self.control.wait(0.5)
            if command == RESUME:
                break
            if command == STOP:
                return self.stop()
        self.meter.reset()
        self.meter.mark(self.iteration)
        self.events.emit("resumed", iteration=self.iteration)
        return None

    def finish(self) -> int:
        if self.main:
            with self.watch.busy("writing the last checkpoint and the model file"):
                return super().finish()
        # The same collectives as rank 0's finish (log and checkpoint), without the writes.
        if self.count:
            self.log()
        self.checkpoint()
        return 0


# -- the process ----------------------------------------------------------------------------
class RankReporter:
    """How this process tells of a failure: rank 0's events, the launcher's notes, stderr."""

    def __init__(self, ranks: Any, events: Any, run: Path | None) -> None:
        self.ranks, self.events, self.run = ranks, events, run

    def __call__(self, message: str, hint: str, kind: str = "internal",
                 details: str | None = None) -> None:
        """Report this process's failure once, everywhere it should be seen."""
        rank = self.ranks.rank
        rank_notes.failure(rank, message, hint)
        _record_for_torchrun(message)
        if self.ranks.is_main:
            # Training.run records failures inside the loop; a process that failed (or
            # the watchdog, from its thread) needs it said here. A set-up error leaves
            # the run's state alone, as with one process.
            if kind == "rank_failed" and self.run is not None and RunFolder(self.run).is_run():
                RunFolder(self.run).write_status("failed", message=message)
            fields = {"traceback": details} if details else {}
            self.events.emit("error", message=message, hint=hint, kind=kind, **fields)
            if details and not self.events.json_lines:
                sys.stderr.write(details)  # as one process does: a bug shows its traceback
        else:  # only rank 0 has events; the others say it on stderr
            sys.stderr.write(f"cyclestudio rank {rank}: error: {message}\n  hint: {hint}\n")
            sys.stderr.flush()


def _record_for_torchrun(message: str) -> None:
    """Leave the message where torchrun's failure summary looks (TORCHELASTIC_ERROR_FILE)."""
    if not os.environ.get("TORCHELASTIC_ERROR_FILE"):
        return
    try:
        from torch.distributed.elastic.multiprocessing.errors import ErrorHandler

        ErrorHandler().record_exception(RuntimeError(message))
    except Exception:  # noqa: BLE001 - a courtesy for torchrun's summary only
        pass


def _is_distributed_error(exc: BaseException) -> bool:
    import torch.distributed as dist

    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        word in text for word in ("gloo", "NCCL", "Connection closed", "Connection reset",
                                  "ProcessGroup", "c10d"))


def run_rank(args: argparse.Namespace) -> int:
    """Train as one of the processes torchrun started; the exit code of this process."""
    from cyclestudio.core import distributed
    from cyclestudio.jobs.events import Control, Events

    ranks = distributed.from_env()
    main = ranks.is_main
    read_stdin = main and (args.events or os.environ.get(rank_notes.CONTROL_ENV) == "1")
    control = Control(read_stdin=read_stdin)
    events: Any = (NotedEvents(Events(args.events, on_closed=lambda: control.put(STOP)))
                   if main else Silent())
    control.install_signal_handlers()
    rank_notes.write(f"rank{ranks.rank}.pid", os.getpid())
    folder = args.resume or args.out
    report = RankReporter(ranks, events, Path(folder).absolute() if folder else None)
    watch = None
    try:
        device = distributed.rank_device(_device_choice(args), ranks.local_rank)
        timeout = float(args.rank_timeout or _default("rank_timeout"))
        distributed.init_process_group(device, COLLECTIVE_FACTOR * timeout + 60)
        from cyclestudio.jobs.rank_watchdog import Watchdog

        watch = Watchdog(ranks, timeout, lambda m, h: report(m, h, kind="rank_failed"))
        watch.start()
        training = _set_up(args, events, control, ranks, device, watch)
        return training.run()
    except UserError as error:
        if isinstance(error, SetUpFailed) and not main:
            rank_notes.failure(ranks.rank, error.message, error.hint)
        else:
            report(error.message, error.hint, kind="user")
        return 2
    except KeyboardInterrupt:
        report("aborted by a second interrupt; the last checkpoint is kept",
               f"continue with cyclestudio train --resume {folder}", kind="interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the boundary: report, never hang
        if watch is not None and _is_distributed_error(exc):
            _diagnose(watch)  # ends this process, naming the culprit, if the heartbeats tell
        report(f"{type(exc).__name__}: {exc}".splitlines()[0],
               "this is a bug or a broken plugin, unless another process failed first "
               "(see its messages); the last checkpoint is kept",
               details=traceback.format_exc())
        return 1
    finally:
        if watch is not None:
            watch.stop()
        distributed.shutdown()


def _device_choice(args: argparse.Namespace) -> str:
    """--device, else (resuming) the device the run was started with, else auto."""
    if args.device:
        return str(args.device)
    if args.resume:
        return str(RunFolder(args.resume).read_config().get("run", {}).get("device") or "auto")
    return "auto"


def _default(name: str) -> Any:
    from cyclestudio import options

    return options.default(name)


def _set_up(args: argparse.Namespace, events: Any, control: Any, ranks: Any, device: Any,
            watch: Any) -> DistributedTraining:
    """This process's training, once every process has checked its own set-up."""
    from cyclestudio.core.distributed import gather_errors

    training = None
    mine = None
    try:
        training = DistributedTraining.from_args(args, events, control)
        training.setup(ranks, device, watch)
    except UserError as error:
        mine = (error.message, error.hint)
    everyone = gather_errors(mine, ranks)
    failed = [(r, e) for r, e in enumerate(everyone) if e is not None]
    if failed:
        # Rank 0 tells its own error, else the first process's; the others say nothing
        # more (every process usually has the same one: a folder that does not exist).
        rank, (message, hint) = failed[0]
        if ranks.is_main:
            raise UserError(message if rank == 0 else f"rank {rank}: {message}", hint)
        raise SetUpFailed(*(mine or (message, hint)))
    assert training is not None
    return training


def _diagnose(watch: Any) -> None:
    """Give the watchdog time to name the process a failed collective was waiting for.

    The watchdog thread keeps beating and checking; once another process has been silent
    long enough it reports that and ends this process. If nobody is silent, this returns
    and the failure is reported as it is.
    """
    import time

    deadline = time.monotonic() + watch.stale_s + 5 * watch.beat_s
    while time.monotonic() < deadline:
        time.sleep(watch.beat_s)
