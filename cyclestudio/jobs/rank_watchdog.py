"""A watchdog for the processes of one distributed run: heartbeats in torchrun's store.

Every process of a run beats once a second in the key-value store torchrun's processes
share (from a thread, so a process deep in a computation still beats) and publishes
the iteration it has started and whether it is busy with something slow on purpose
(rank 0 writing a checkpoint). When this process's own loop has not moved for a while,
the watchdog looks at everyone's marks:

- a process whose heartbeat stopped is dead, stopped, or cut off: it is named once it
  has been silent for ``stale_s`` seconds;
- a process behind the others (alive, not busy) is stuck before its step: it is named
  once this process has waited ``--rank-timeout`` seconds;
- a process busy on purpose is waited for up to four times that;
- the launcher having gone (this process was orphaned) ends the run at once.

The watchdog then reports through ``report(message, hint)`` and ends its process, so a
run never hangs silently. What it cannot tell apart (every process alive and at the same
iteration: a collective itself hung) ends at torch.distributed's own timeout.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from cyclestudio.core.distributed import Ranks

EXIT_CODE = 1  # what a process ended by its watchdog exits with
BUSY_FACTOR = 4  # a process busy on purpose gets this many --rank-timeouts


class Watchdog:
    """This process's heartbeat and marks, and the check on everyone else's."""

    def __init__(
        self, ranks: Ranks, timeout_s: float, report: Callable[[str, str], None],
        beat_s: float = 1.0, stale_s: float | None = None,
    ) -> None:
        self.ranks, self.timeout_s, self.report = ranks, float(timeout_s), report
        self.beat_s = beat_s
        self.stale_s = min(15.0, self.timeout_s) if stale_s is None else stale_s
        self.iteration = 0  # the iteration this process has started (published as at/RANK)
        self.last_tick = time.monotonic()
        self.busy_what = ""
        self.busy_since = 0.0
        self._parent = os.getppid()
        self._store: Any = None
        self._published = {"at": 0, "busy": 0}
        self._seen: dict[int, tuple[int, float]] = {}  # rank -> (beat count, when it changed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the training loop's side ---------------------------------------------------------
    def start(self) -> None:
        """Connect to the run's store and start beating."""
        self._store = _connect_store()
        self._thread = threading.Thread(target=self._run, name="rank-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating, and tell the others this process ended on purpose (not died)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5 * self.beat_s)
        if self._store is not None:
            try:
                self._store.add(f"done/{self.ranks.rank}", 1)
            except Exception:  # noqa: BLE001 - the store may be gone already; nothing to tell
                pass

    def entered(self, iteration: int) -> None:
        """The loop has its batch for ``iteration`` and starts the step."""
        self.iteration = iteration
        self.last_tick = time.monotonic()

    def tick(self) -> None:
        """The loop is making progress (between steps, or waiting on purpose)."""
        self.last_tick = time.monotonic()

    @contextmanager
    def busy(self, what: str) -> Iterator[None]:
        """Mark a slow piece of work the others will wait for (e.g. writing a checkpoint)."""
        self.busy_what, self.busy_since = what, time.monotonic()
        try:
            yield
        finally:
            self.busy_what = ""
            self.tick()

    # -- the watchdog thread --------------------------------------------------------------
    def _run(self) -> None:
        failures_since: float | None = None
        while not self._stop.wait(self.beat_s):
            if os.getppid() != self._parent:
                self._fire("the launcher of this run has gone (torchrun or `cyclestudio train "
                           "--gpus`), so the run stops",
                           "resume the run; the last checkpoint is kept")
            try:
                self._publish()
                verdict = self.check()
                failures_since = None
            except Exception as exc:  # noqa: BLE001 - the store went away: say so in time
                now = time.monotonic()
                failures_since = failures_since or now
                if now - failures_since < self.stale_s:
                    continue
                verdict = (f"the run's rendezvous store ({_store_address()}) is unreachable: "
                           f"{type(exc).__name__}: {exc}".splitlines()[0],
                           "the launcher or the first machine has gone; resume the run")
            if verdict is not None:
                self._fire(*verdict)

    def _publish(self) -> None:
        store, rank = self._store, self.ranks.rank
        store.add(f"beat/{rank}", 1)
        if self.iteration != self._published["at"]:
            store.add(f"at/{rank}", self.iteration - self._published["at"])
            self._published["at"] = self.iteration
        busy = 1 if self.busy_what else 0
        if busy != self._published["busy"]:
            if busy:
                store.set(f"what/{rank}", self.busy_what)
            store.add(f"busy/{rank}", busy - self._published["busy"])
            self._published["busy"] = busy

    def check(self, now: float | None = None) -> tuple[str, str] | None:
        """(message, hint) naming the process that holds the run up, or None if none does."""
        now = time.monotonic() if now is None else now
        waited = now - self.last_tick
        if waited < 3 * self.beat_s:
            self._seen.clear()  # moving: nothing to judge, and start afresh next time
            return None
        store, me = self._store, self.ranks.rank
        others = [r for r in range(self.ranks.world_size) if r != me]
        for r in others:
            count = int(store.add(f"beat/{r}", 0))
            if r not in self._seen or self._seen[r][0] != count:
                self._seen[r] = (count, now)
        silent = [(now - self._seen[r][1], r) for r in others
                  if now - self._seen[r][1] >= self.stale_s
                  and not int(store.add(f"done/{r}", 0))]
        if silent:
            quiet, rank = max(silent)
            return (f"rank {rank} stopped responding: no heartbeat for {quiet:.0f} s "
                    f"(its process died, was stopped, or its machine is unreachable); rank "
                    f"{me} waited {waited:.0f} s at iteration {self.iteration}",
                    "look for rank " + str(rank) + "'s own messages above; resume the run "
                    "from its last checkpoint (with fewer processes if a GPU failed)")
        if waited < self.timeout_s:
            return None
        ranks = range(self.ranks.world_size)
        at = {r: int(store.add(f"at/{r}", 0)) for r in ranks}
        busy = [r for r in ranks if int(store.add(f"busy/{r}", 0)) > 0]
        if busy:
            if waited < BUSY_FACTOR * self.timeout_s:
                return None
            what = store.get(f"what/{busy[0]}").decode("utf-8", "replace")
            return (f"rank {busy[0]} has been {what} for more than {waited:.0f} s; the other "
                    "processes gave up waiting",
                    "check its disk (a full or very slow disk?), or raise --rank-timeout")
        ahead = max(at.values())
        behind = [r for r in ranks if at[r] < ahead and not int(store.add(f"done/{r}", 0))]
        # Only a process that still beats is stuck; a quiet one may be dead (named above,
        # once it has been quiet long enough).
        quiet = [r for r in behind if r != me and now - self._seen[r][1] > 2.5 * self.beat_s]
        if behind and not quiet:
            rank = behind[0]
            return (f"rank {rank} is stuck before iteration {at[rank] + 1}: the others reached "
                    f"iteration {ahead} and waited {waited:.0f} s for it",
                    "it may be stuck reading images (a hung network drive?) or in a plugin; "
                    "resume the run, or raise --rank-timeout if its steps are just slow")
        return None

    def _fire(self, message: str, hint: str) -> None:
        try:
            self.report(message, hint)
        finally:
            sys.stderr.flush()
            os._exit(EXIT_CODE)


def _store_address() -> str:
    return f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"


def _connect_store() -> Any:
    """A client of the key-value store torchrun set up for this run, under our own prefix."""
    import torch.distributed as dist

    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                          is_master=False, timeout=timedelta(seconds=30))
    # A run restarted by torchrun (or another run on the same store) counts afresh.
    prefix = (f"cyclestudio/{os.environ.get('TORCHELASTIC_RUN_ID', 'run')}/"
              f"{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}")
    return dist.PrefixStore(prefix, store)
