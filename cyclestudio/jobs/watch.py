"""`cyclestudio watch`: a hot folder. Every image that lands in it is translated.

Images already there when the watch starts are translated too, unless their output
exists. A file is taken only once it has stopped growing, so a slow copy or a
camera upload is never read half-written. watchdog reports new files (inotify,
FSEvents or ReadDirectoryChangesW); ``--poll`` scans instead, for network drives
where those notifications never arrive.
"""

from __future__ import annotations

import argparse
import queue
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cyclestudio import options
from cyclestudio.errors import UserError

HELP = "watch a folder and translate each new image as it arrives"

SETTLE_S = 0.6  # a file must keep its size and mtime this long before it is read


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="a .csmodel file, a run folder, or an exported .onnx")
    p.add_argument("--in", dest="inbox", required=True, metavar="DIR",
                   help="the folder to watch (subfolders too; their tree is mirrored)")
    p.add_argument("--out", required=True, metavar="DIR", help="where translations go")
    # One image at a time as it arrives: batching and compiling do not apply.
    options.add_arguments(p, options.TRANSLATE, skip=("compile", "batch_size"))
    p.add_argument("--poll", action="store_true",
                   help="scan the folder every --interval seconds instead of OS notifications")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between scans (--poll)")
    p.add_argument("--skip-existing", action="store_true",
                   help="ignore images already in the folder when the watch starts")
    p.add_argument("--events", action="store_true", help="JSON-lines events for the app")


@dataclass
class _Seen:
    size: int
    mtime: float
    since: float


class Inbox:
    """Files waiting to settle, and the ones already handled (by size and mtime)."""

    def __init__(self, root: Path, out_dir: Path) -> None:
        self.root, self.out_dir = root, out_dir
        self.waiting: dict[Path, _Seen] = {}
        self.handled: dict[Path, tuple[int, float]] = {}

    def offer(self, path: Path) -> None:
        """Note a file that appeared or changed."""
        from cyclestudio.core.imagescan import is_image_name

        path = Path(path)
        if not is_image_name(path) or self._inside_output(path):
            return
        if any(part.startswith(".") for part in path.relative_to(self.root).parts[:-1]):
            return
        self.waiting.setdefault(path, _Seen(-1, -1.0, time.monotonic()))

    def _inside_output(self, path: Path) -> bool:
        try:
            path.resolve().relative_to(self.out_dir.resolve())
            return True
        except ValueError:
            return False

    def settled(self, now: float | None = None) -> list[Path]:
        """Files whose size and mtime have not changed for SETTLE_S, oldest first."""
        now = time.monotonic() if now is None else now
        ready = []
        for path, seen in list(self.waiting.items()):
            try:
                st = path.stat()
            except OSError:
                self.waiting.pop(path)  # gone again (a temp file renamed away)
                continue
            key = (st.st_size, st.st_mtime)
            if (seen.size, seen.mtime) != key:
                self.waiting[path] = _Seen(st.st_size, st.st_mtime, now)
            elif now - seen.since >= SETTLE_S and self.handled.get(path) != key:
                ready.append(path)
                self.handled[path] = key
                self.waiting.pop(path)
            elif self.handled.get(path) == key:
                self.waiting.pop(path)
        return sorted(ready, key=lambda p: p.stat().st_mtime if p.exists() else 0)


def _observer(root: Path, poll: bool, interval: float, found: queue.Queue[Path]) -> Any:
    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer
    from watchdog.observers.polling import PollingObserver

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if event.is_directory:
                if event.event_type in ("created", "moved"):
                    # A folder dropped in whole: its files may not raise their own events.
                    from cyclestudio.core.imagescan import list_images

                    target = Path(getattr(event, "dest_path", "") or event.src_path)
                    if target.is_dir():
                        for f in list_images(target):
                            found.put(f)
                return
            if event.event_type in ("created", "modified", "closed"):
                found.put(Path(event.src_path))
            elif event.event_type == "moved":
                found.put(Path(event.dest_path))

    observer = PollingObserver(timeout=interval) if poll else Observer()
    observer.schedule(Handler(), str(root), recursive=True)
    return observer


def run(args: argparse.Namespace) -> int:
    from cyclestudio.core.imagescan import list_images
    from cyclestudio.core.modelfile import load_translator
    from cyclestudio.jobs.events import Control, Events
    from cyclestudio.jobs.translate import (
        Outcome,
        Settings,
        parse_tile,
        pick_direction,
        plan_items,
        safe_suffix,
        translate_items,
    )

    root = Path(args.inbox).absolute()
    out_dir = Path(args.out).absolute()
    if not root.is_dir():
        raise UserError(f"--in {args.inbox} is not a folder", "give the folder to watch")
    if root == out_dir:
        raise UserError("--out is the watched folder", "choose another --out (a subfolder works)")
    direction = args.direction
    options.fill_defaults(args, options.TRANSLATE)  # checks ranges, names a bad flag
    if args.interval <= 0:
        raise UserError("--interval must be positive", "e.g. --interval 2")
    tile = parse_tile(args.tile)
    translator = load_translator(Path(args.model), args.device, precision=args.precision,
                                 backend=args.backend)
    args.direction = pick_direction(translator, direction, args.direction)
    _, target = translator.model.domain_names(args.direction)
    suffix = safe_suffix(target) if args.suffix is None else args.suffix
    settings = Settings(args.direction, args.format, args.quality, tile, batch_size=1)
    out_dir.mkdir(parents=True, exist_ok=True)

    control = Control(read_stdin=args.events)
    # A person at a terminal gets one line per file (below), not the training-style display.
    events = Events(True, on_closed=lambda: control.put("stop")) if args.events else _Quiet()
    control.install_signal_handlers()
    found: queue.Queue[Path] = queue.Queue()
    inbox = Inbox(root, out_dir)
    observer = _observer(root, args.poll, args.interval, found)
    observer.start()
    counts = {"translated": 0, "skipped": 0, "failed": 0}
    say = (lambda text: None) if args.events else (lambda text: print(text, flush=True))

    if not args.skip_existing:
        for f in list_images(root):
            found.put(f)
    events.emit("started", total=None, device=str(translator.device),
                model=str(Path(args.model).absolute()), watching=str(root), out=str(out_dir),
                backend=getattr(translator, "backend", "torch"))
    say(f"watching {root} → {out_dir} ({'polling' if args.poll else 'notifications'}); "
        "Ctrl-C to stop")

    def report(o: Outcome) -> None:
        counts[o.status] += 1
        events.emit("file", input=str(o.source), output=str(o.output) if o.output
                    and o.status == "translated" else None, status=o.status,
                    reason=o.reason or None, code=o.code or None)
        events.emit("progress", done=sum(counts.values()), total=None, images_per_s=None,
                    eta_s=None)
        say(f"{o.status}: {o.source}" + (f" → {o.output}" if o.status == "translated" else
                                           f" ({o.reason})"))

    state = {"paused": False}

    def obey(command: str) -> bool:
        """Act on one control line; True when it means stop."""
        if command == "stop":
            return True
        if command == "pause" and not state["paused"]:
            state["paused"] = True
            events.emit("paused", done=sum(counts.values()))
        elif command == "resume" and state["paused"]:
            state["paused"] = False
            events.emit("resumed", done=sum(counts.values()))
        elif command not in ("pause", "resume", "sample"):
            events.emit("warning", message=f"unknown command {command!r}")
        return False

    def between_files() -> bool:
        """Asked before each file of a batch: stop now, or hold here while paused."""
        if any(obey(command) for command in control.poll()):
            return True
        while state["paused"] and not control.stop_requested:
            command = control.wait(0.5)
            if command is not None and obey(command):
                return True
        return control.stop_requested

    try:
        while True:
            if any(obey(command) for command in control.poll()) or control.stop_requested:
                raise _Stop
            try:
                inbox.offer(found.get(timeout=0.2))
                while True:
                    inbox.offer(found.get_nowait())
            except queue.Empty:
                pass
            if state["paused"]:
                continue
            ready = inbox.settled()
            if not ready:
                continue
            items, skipped = [], []
            for path in ready:  # the watched tree is mirrored under --out
                target = out_dir / path.relative_to(root).parent
                more, skip = plan_items([path], target, suffix, args.format, args.overwrite)
                items += more
                skipped += skip
            for o in skipped:
                report(o)
            if not translate_items(translator, items, settings, report,
                                   should_stop=between_files, workers=1):
                raise _Stop
    except _Stop:
        pass
    finally:
        observer.stop()
        observer.join(timeout=5)
    events.emit("stopped", done=sum(counts.values()), **counts)
    say(f"stopped: translated {counts['translated']}, skipped {counts['skipped']}, "
        f"failed {counts['failed']}")
    return 0


class _Quiet:
    """Stands in for Events when a person is watching the terminal."""

    def emit(self, event: str, **fields: Any) -> None:
        pass


class _Stop(Exception):
    """Leave the watch loop."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run `cyclestudio watch`")
