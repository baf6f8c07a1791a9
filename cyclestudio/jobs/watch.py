"""`cyclestudio watch`: a hot folder. Every image that lands in it is translated.

Images already there when the watch starts are translated too, unless the output
folder's manifest says they were before (jobs/manifest.py: once per content, model
and settings, across restarts; a changed image is translated again). A file is read
only once it is complete (jobs/settling.py: close-after-write notifications where the
OS gives them, else a quiet period that stretches to the writer's pauses), so a slow
copy is never reported as broken. A file that really cannot be translated is moved to
``OUT/failed/`` with a note saying why (jobs/quarantine.py). watchdog reports new files
(inotify, FSEvents or ReadDirectoryChangesW); ``--poll`` scans instead, and network
folders, where notifications never arrive for other machines' writes, are polled.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
from pathlib import Path
from typing import Any

from cyclestudio import options
from cyclestudio.errors import UserError

HELP = "watch a folder and translate each new image as it arrives"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="a .csmodel file, a run folder, or an exported .onnx")
    p.add_argument("--in", dest="inbox", required=True, metavar="DIR",
                   help="the folder to watch (subfolders too; their tree is mirrored)")
    p.add_argument("--out", required=True, metavar="DIR", help="where translations go")
    # One image at a time as it arrives: compiling does not apply.
    options.add_arguments(p, options.TRANSLATE, skip=("compile",))
    options.add_arguments(p, options.WATCH)
    p.add_argument("--poll", action="store_true",
                   help="scan the folder every --interval seconds instead of OS notifications")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between scans (--poll)")
    p.add_argument("--skip-existing", action="store_true",
                   help="ignore images already in the folder when the watch starts")
    p.add_argument("--events", action="store_true", help="JSON-lines events for the app")


class Inbox:
    """Which paths of the watched tree are ours to look at, and what happened to them."""

    def __init__(self, root: Path, out_dir: Path, settler: Any) -> None:
        self.root, self.out_dir, self.settler = root, out_dir, settler
        self._out = os.path.join(os.path.abspath(out_dir), "")
        self._root = os.path.abspath(root)

    def wanted(self, path: Path) -> bool:
        """An image name inside the watched tree, outside hidden folders and --out."""
        from cyclestudio.core.imagescan import is_image_name

        absolute = os.path.abspath(path)
        if not is_image_name(path) or absolute.startswith(self._out):
            return False
        relative = os.path.relpath(absolute, self._root)
        parts = Path(relative).parts
        return not relative.startswith("..") and not any(
            part.startswith(".") for part in parts[:-1])

    def offer(self, path: Path, what: str) -> None:
        """Note what happened to a path, if it is one of ours."""
        if self.wanted(path):
            self.settler.note(Path(path), what)


def _observer(root: Path, poll: bool, interval: float, found: queue.Queue[Any]) -> Any:
    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer
    from watchdog.observers.polling import PollingObserver

    from cyclestudio.jobs import settling

    kinds = {"created": settling.CREATED, "modified": settling.MODIFIED,
             "closed": settling.CLOSED}

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if event.is_directory:
                if event.event_type in ("created", "moved"):
                    # A folder dropped in whole: its files may not raise their own events.
                    target = getattr(event, "dest_path", "") or event.src_path
                    found.put(("folder", Path(os.fsdecode(target))))
                return
            if event.event_type in kinds:  # (opened, closed_no_write: our own reads)
                found.put((kinds[event.event_type], Path(os.fsdecode(event.src_path))))
            elif event.event_type == "moved":
                found.put((settling.MOVED_IN, Path(os.fsdecode(event.dest_path))))

    observer = PollingObserver(timeout=interval) if poll else Observer()
    observer.schedule(Handler(), str(root), recursive=True)
    return observer


def run(args: argparse.Namespace) -> int:
    from cyclestudio.atomic import remove_stale_temps
    from cyclestudio.core.imagescan import iter_images
    from cyclestudio.core.modelfile import load_translator
    from cyclestudio.jobs import settling
    from cyclestudio.jobs.events import Control, Events
    from cyclestudio.jobs.manifest import Manifest, model_key, settings_key
    from cyclestudio.jobs.quarantine import quarantine
    from cyclestudio.jobs.translate import (
        Outcome,
        Settings,
        auto_batch,
        iter_plan,
        parse_tile,
        pick_direction,
        safe_suffix,
        translate_items,
    )

    root = Path(args.inbox).absolute()
    out_dir = Path(args.out).absolute()
    if not root.is_dir():
        raise UserError(f"--in {args.inbox} is not a folder", "give the folder to watch")
    if root == out_dir or (out_dir.exists() and os.path.samefile(root, out_dir)):
        raise UserError("--out is the watched folder", "choose another --out (a subfolder works)")
    direction = args.direction
    options.fill_defaults(args, options.TRANSLATE)  # checks ranges, names a bad flag
    options.fill_defaults(args, options.WATCH)
    if args.interval <= 0:
        raise UserError("--interval must be positive", "e.g. --interval 2")
    tile = parse_tile(args.tile)
    translator = load_translator(Path(args.model), args.device, precision=args.precision,
                                 backend=args.backend)
    args.direction = pick_direction(translator, direction, args.direction)
    _, target = translator.model.domain_names(args.direction)
    suffix = safe_suffix(target) if args.suffix is None else args.suffix
    batch_size, batch_pixels = auto_batch(translator.device.type, args.batch_size)
    settings = Settings(args.direction, args.format, args.quality, tile, batch_size,
                        batch_pixels)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir, recursive=True)
    manifest = Manifest(out_dir, model_key(Path(args.model)),
                        settings_key(args.direction, args.format, args.quality))

    control = Control(read_stdin=args.events)
    # For a person, jobs/terminal.py draws these events: one line per file.
    events = Events(args.events, on_closed=lambda: control.put("stop"), job="watch")
    control.install_signal_handlers()

    network = settling.is_network_folder(root)
    poll = args.poll
    if network and not poll:
        poll = True
        events.emit("warning", message=f"{root} is on a network file system ({network}): "
                    "changes made by other machines raise no notifications here, so it is "
                    "polled every --interval seconds")
    settle = args.settle or (settling.NETWORK_SETTLE_S if network else
                             settling.DEFAULT_SETTLE_S)
    found: queue.Queue[Any] = queue.Queue()
    try:
        observer = _observer(root, poll, args.interval, found)
        observer.start()
    except OSError as exc:  # e.g. the inotify watch limit: scan instead
        events.emit("warning", message=f"cannot watch {root} for notifications ({exc}); "
                    "polling instead", hint="raise fs.inotify.max_user_watches, or use --poll")
        poll = True
        observer = _observer(root, True, args.interval, found)
        observer.start()
    closes = type(observer).__name__ == "InotifyObserver"
    settler = settling.Settler(settle, closes_notified=closes)
    inbox = Inbox(root, out_dir, settler)
    counts = {"translated": 0, "skipped": 0, "failed": 0}
    if not args.skip_existing:
        for f in iter_images(root, exclude=[out_dir]):
            inbox.offer(f, settling.FOUND)
    events.emit("started", total=None, device=str(translator.device),
                model=str(Path(args.model).absolute()), watching=str(root), out=str(out_dir),
                backend=getattr(translator, "backend", "torch"),
                settle_s=settle, notifications="polling" if poll else (
                    "close-after-write" if closes else "changes"))

    def progress() -> None:
        events.emit("progress", done=sum(counts.values()), total=None, images_per_s=None,
                    eta_s=None, waiting=settler.waiting(), **counts)

    def report(o: Outcome) -> None:
        if o.status == "failed" and not o.code and settler.failed_read(o.source):
            return  # it may still be growing: read it again after a quiet period
        settler.finished(o.source)
        moved = None
        if o.status == "translated" and o.output is not None:
            manifest.record(o.source, o.fingerprint, "translated", o.output)
        elif o.status == "failed" and not o.code:  # the input's fault: move it aside
            moved = quarantine(o.source, root, out_dir, o.reason)
            if moved is None and o.fingerprint is not None:
                # It could not be moved: remember it, so it is not retried until it changes.
                manifest.record(o.source, o.fingerprint, "failed", reason=o.reason)
        counts[o.status] += 1
        events.emit("file", input=str(o.source), output=str(o.output) if o.output
                    and o.status == "translated" else None, status=o.status,
                    reason=o.reason or ("; ".join(o.notes) if o.notes else None),
                    code=o.code or None, moved_to=str(moved) if moved else None)
        progress()

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

    waiting_shown = -1
    try:
        while True:
            if any(obey(command) for command in control.poll()) or control.stop_requested:
                raise _Stop
            try:
                _take(inbox, found.get(timeout=0.1))
                while True:
                    _take(inbox, found.get_nowait())
            except queue.Empty:
                pass
            if not observer.is_alive():
                raise RuntimeError("the folder watcher stopped unexpectedly")
            if settler.waiting() != waiting_shown:  # the app shows how many are waiting
                waiting_shown = settler.waiting()
                progress()
            if state["paused"]:
                continue
            ready = settler.due()
            if not ready:
                continue
            plan = (planned for path in ready for planned in iter_plan(
                [path], out_dir / path.relative_to(root).parent, suffix, args.format,
                args.overwrite, manifest, redo_gone=False, retry_failed=False))
            if not translate_items(translator, plan, settings, report,
                                   should_stop=between_files, workers=1):
                raise _Stop
    except _Stop:
        pass
    finally:
        _quiet_inotify_stop()
        observer.stop()
        observer.join(timeout=5)
        manifest.close()
    events.emit("stopped", done=sum(counts.values()), waiting=settler.waiting(), **counts)
    return 0


def _quiet_inotify_stop() -> None:
    """watchdog logs an error when an event arrives while its thread stops: a harmless
    race at the end of every watch, not for the person's terminal."""
    import logging

    logging.getLogger("watchdog.observers.inotify").addFilter(
        lambda record: "thread is inactive" not in record.getMessage())


def _take(inbox: Inbox, event: tuple[str, Path]) -> None:
    """Hand one watcher event to the inbox (a new folder is scanned whole)."""
    from cyclestudio.core.imagescan import iter_images
    from cyclestudio.jobs.settling import FOUND

    what, path = event
    if what == "folder":
        if path.is_dir() and not os.path.abspath(path).startswith(inbox._out):
            for f in iter_images(path, exclude=[inbox.out_dir]):
                inbox.offer(f, FOUND)
        return
    inbox.offer(path, what)


class _Stop(Exception):
    """Leave the watch loop."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run `cyclestudio watch`")
