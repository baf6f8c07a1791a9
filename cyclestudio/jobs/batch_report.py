"""A batch's events and, for a person at a terminal, the summary at its end."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cyclestudio.jobs.planning import Outcome


class Reporter:
    """A batch's events (jobs/events.py: JSON lines for the app, else drawn on the
    terminal) and, for a person, the summary at its end."""

    def __init__(self, json_lines: bool, on_closed: Callable[[], None] | None = None) -> None:
        from cyclestudio.jobs.events import Events

        self.events = Events(json_lines, on_closed=on_closed, job="translate")
        self.json_lines = json_lines

    def emit(self, event: str, **fields: Any) -> None:
        self.events.emit(event, **fields)

    def summary(self, outcomes: Tally | Iterable[Outcome], out_dir: Path, total: int) -> None:
        """The closing summary for a person: counts, skips by reason, then every failure."""
        if self.json_lines:
            return
        tally = outcomes if isinstance(outcomes, Tally) else Tally.of(outcomes)
        self.events.terminal.close_bar()
        counts = tally.counts
        print(f"translated {counts['translated']}, skipped {counts['skipped']}, "
              f"failed {counts['failed']} (output in {out_dir})")
        for o in tally.skipped:
            print(f"  skipped: {o.source}: {o.reason}")
        more = counts["skipped"] - len(tally.skipped)
        if more > 0:
            print(f"  … and {more} more skipped")
        if tally.failed:
            print(f"failed ({len(tally.failed)}):")
            for o in tally.failed:
                print(f"  {o.source}: {o.reason}")
        done = sum(counts.values())
        if total - done > 0:
            print(f"stopped early: {total - done} of {total} inputs were not translated; run "
                  "the same command again to finish them (what was written is skipped)")


class Tally:
    """Counts of outcomes, every failure, and the first few skips (memory stays flat)."""

    SHOWN_SKIPS = 20

    def __init__(self) -> None:
        self.counts = {"translated": 0, "skipped": 0, "failed": 0}
        self.failed: list[Outcome] = []
        self.skipped: list[Outcome] = []

    @classmethod
    def of(cls, outcomes: Iterable[Outcome]) -> Tally:
        """A tally of these outcomes."""
        tally = cls()
        for o in outcomes:
            tally.add(o)
        return tally

    def add(self, o: Outcome) -> None:
        """Count one outcome."""
        self.counts[o.status] = self.counts.get(o.status, 0) + 1
        if o.status == "failed":
            self.failed.append(Outcome(o.source, None, "failed", o.reason, code=o.code))
        elif o.status == "skipped" and len(self.skipped) < self.SHOWN_SKIPS:
            self.skipped.append(o)

    def write_failed_list(self, path: Path) -> None:
        """Every failed input, one ``path<TAB>reason`` a line (written atomically)."""
        from cyclestudio.atomic import atomic_write

        with atomic_write(Path(path), "w", encoding="utf-8") as f:
            for o in self.failed:
                reason = " ".join(o.reason.split())
                f.write(f"{o.source.absolute()}\t{reason}\n")
