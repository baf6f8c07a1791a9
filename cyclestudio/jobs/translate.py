"""`cyclestudio translate`: convert files and folders with a model, at their own size.

Decoding and encoding run in worker threads while the network computes; images of
equal size are batched; large images go through in tiles. A bad file is reported
with its reason and skipped; the rest of the batch goes on.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cyclestudio import options
from cyclestudio.errors import UserError

HELP = "translate images (files or folders, recursively) with a model file or a run folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="a .csmodel file or a run folder")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (a folder input's tree is mirrored under it)")
    options.add_arguments(p, options.TRANSLATE)
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="translate on a Ray cluster (pip install \"cyclestudio[ray]\"): "
                   "its address, or none to start Ray on this machine; inputs and outputs "
                   "must be on storage every node reaches")
    p.add_argument("--events", action="store_true", help="JSON-lines events for the app")


@dataclass(frozen=True)
class Item:
    """One input file and where its translation goes."""

    source: Path
    output: Path


OUTPUT_EXISTS = "output_exists"  # the `code` of a file skipped because its output exists


@dataclass
class Outcome:
    """What happened to one input."""

    source: Path
    output: Path | None
    status: str  # translated | skipped | failed
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    code: str = ""  # a stable name for the reason, for the app's own wording (docs/events.md)


def parse_tile(text: str) -> int | str | None:
    """``--tile`` as auto, None (off) or a side in pixels."""
    text = str(text).strip().lower()
    if text == "auto":
        return "auto"
    if text in ("off", "0", "none"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"--tile {text} is not auto, off or a number of pixels",
                        "e.g. --tile 512") from None
    if value < 32:
        raise UserError(f"--tile {value} is too small", "use at least 32 pixels")
    return value


def safe_suffix(name: str) -> str:
    """A domain name made safe for file names: `_zebra`."""
    cleaned = re.sub(r"[^\w.-]+", "_", name.strip()).strip("_")
    return f"_{cleaned or 'translated'}"


def plan_items(
    inputs: Sequence[Path], out_dir: Path, suffix: str, fmt: str, overwrite: bool
) -> tuple[list[Item], list[Outcome]]:
    """Pair each input with its output; list the inputs skipped before any work, and why."""
    from cyclestudio.core.imagecodec import output_format
    from cyclestudio.core.imagescan import list_images

    items: list[Item] = []
    skipped: list[Outcome] = []
    claimed: dict[Path, Path] = {}
    sources: list[tuple[Path, Path]] = []  # (file, path relative to the output folder)
    for given in inputs:
        given = Path(given)
        if given.is_dir():
            sources += [(f, f.relative_to(given)) for f in list_images(given)]
        elif given.is_file():
            sources.append((given, Path(given.name)))
        else:
            raise UserError(f"{given} does not exist", "check the path")
    all_inputs = {s.resolve() for s, _ in sources}
    for source, rel in sources:
        _, extension = output_format(fmt, source)
        output = out_dir / rel.parent / f"{source.stem}{suffix}{extension}"
        resolved = output.resolve()
        if resolved in all_inputs:
            skipped.append(Outcome(source, None, "skipped",
                                   "the output would overwrite an input (give --suffix or "
                                   "another --out)"))
        elif resolved in claimed:
            skipped.append(Outcome(source, None, "skipped",
                                   f"same output name as {claimed[resolved]}"))
        elif output.exists() and not overwrite:
            claimed[resolved] = source
            skipped.append(Outcome(source, output, "skipped",
                                   "output exists (use --overwrite to replace it)",
                                   code=OUTPUT_EXISTS))
        else:
            claimed[resolved] = source
            items.append(Item(source, output))
    return items, skipped


class Reporter:
    """Events for the app (JSON lines), or a progress line and a summary for a person."""

    def __init__(self, json_lines: bool, on_closed: Callable[[], None] | None = None) -> None:
        from cyclestudio.jobs.events import Events

        def closed() -> None:
            # Nobody reads our stdout any more: point it at the null device, so the
            # bytes stuck in its buffer do not fail again (with a traceback) at exit.
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass
            if on_closed is not None:
                on_closed()

        self.events = Events(True, on_closed=closed) if json_lines else None
        self.tty = getattr(sys.stderr, "isatty", lambda: False)()
        self._bar = False

    def emit(self, event: str, **fields: Any) -> None:
        if self.events is not None:
            self.events.emit(event, **fields)
            return
        if event == "progress":
            done, total = fields["done"], fields["total"] or 0
            width = 24
            filled = int(width * done / total) if total else 0
            rate = fields.get("images_per_s")
            eta = fields.get("eta_s")
            text = (f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
                    + (f"  {rate:.2f} img/s" if rate else "")
                    + (f"  ETA {int(eta) // 60:02d}:{int(eta) % 60:02d}" if eta else ""))
            if self.tty:
                sys.stderr.write("\r\033[K" + text)
                sys.stderr.flush()
                self._bar = True
            return
        if self._bar:
            sys.stderr.write("\n")
            self._bar = False
        if event == "started":
            sys.stderr.write(f"translating {fields['total']} images with {fields['model']} "
                             f"on {fields['device']}\n")
        elif event == "warning":
            sys.stderr.write(f"warning: {fields['message']}\n")
        elif event == "stopped":
            sys.stderr.write("stopped on request\n")
        sys.stderr.flush()

    def summary(self, outcomes: Sequence[Outcome], out_dir: Path, total: int) -> None:
        """The closing summary for a person: counts, then every skip and failure with why."""
        if self.events is not None:
            return
        if self._bar:
            sys.stderr.write("\n")
            self._bar = False
        counts = {s: sum(o.status == s for o in outcomes) for s in ("translated", "skipped",
                                                                    "failed")}
        print(f"translated {counts['translated']}, skipped {counts['skipped']}, "
              f"failed {counts['failed']} (output in {out_dir})")
        for o in outcomes:
            if o.status != "translated":
                print(f"  {o.status}: {o.source}: {o.reason}")
        left = total - len(outcomes)
        if left > 0:
            print(f"stopped early: {left} of {total} inputs were not translated; run the same "
                  "command again to finish them (outputs already written are skipped)")


@dataclass(frozen=True)
class Settings:
    """How each file is translated and written."""

    direction: str = "a2b"
    fmt: str = "same"
    quality: int = 95
    tile: int | str | None = "auto"
    batch_size: int = 4


def encode(result: Any, picture: Any, item: Item, settings: Settings) -> Outcome:
    """Write one translated image atomically; the outcome says what happened."""
    from cyclestudio.core.imagecodec import (
        make_image,
        output_format,
        save_kwargs,
        write_image_atomic,
    )

    pil_format, _ = output_format(settings.fmt, item.source)
    try:
        image, notes = make_image(result, picture, pil_format)
        write_image_atomic(image, item.output, pil_format,
                           **save_kwargs(pil_format, settings.quality, picture))
    except OSError as exc:
        return Outcome(item.source, None, "failed", f"cannot write {item.output}: {exc}")
    return Outcome(item.source, item.output, "translated", notes=notes)


def translate_items(
    translator: Any,
    items: Sequence[Item],
    settings: Settings,
    on_outcome: Callable[[Outcome], None],
    should_stop: Callable[[], bool] = lambda: False,
    workers: int | None = None,
) -> bool:
    """Translate ``items`` in order, overlapping decoding and encoding with compute.

    Calls ``on_outcome`` once per item (in input order). Returns False if stopped early.
    """
    from cyclestudio.core.imagecodec import BadImage, read_picture

    # Few threads: decoding and encoding overlap compute but must not crowd it out.
    workers = workers or max(1, min(4, (os.cpu_count() or 1) // 2))
    channels = translator.channels
    batch_size = max(1, settings.batch_size)
    lookahead = batch_size * 2 + workers

    def decode(item: Item) -> Any:
        try:
            return read_picture(item.source, channels)
        except BadImage as bad:
            return bad

    stopped = False
    with ThreadPoolExecutor(workers, thread_name_prefix="decode") as decoders, \
            ThreadPoolExecutor(workers, thread_name_prefix="encode") as encoders:
        pending: deque[tuple[Item, Future[Any]]] = deque()
        writing: deque[Future[Outcome] | Outcome] = deque()
        queue = iter(items)

        def refill() -> None:
            while len(pending) < lookahead:
                item = next(queue, None)
                if item is None:
                    return
                pending.append((item, decoders.submit(decode, item)))

        def drain(block: bool) -> None:
            while writing and (block or not isinstance(writing[0], Future) or writing[0].done()):
                head = writing.popleft()
                on_outcome(head.result() if isinstance(head, Future) else head)

        def flush(batch: list[tuple[Item, Any]]) -> None:
            if not batch:
                return
            results = translator.translate_batch([p.pixels for _, p in batch], settings.direction)
            for (item, picture), result in zip(batch, results, strict=True):
                writing.append(encoders.submit(encode, result, picture, item, settings))
            batch.clear()

        refill()
        batch: list[tuple[Item, Any]] = []
        while pending:
            if should_stop():
                stopped = True
                break
            item, future = pending.popleft()
            refill()
            picture = future.result()
            if isinstance(picture, BadImage):
                flush(batch)
                writing.append(Outcome(item.source, None, "failed", picture.reason))
                drain(False)
                continue
            height, width = picture.pixels.shape[:2]
            whole = translator.plan(height, width, settings.tile) is None
            if batch and (not whole or batch[0][1].pixels.shape != picture.pixels.shape
                          or (len(batch) + 1) * height * width > translator.max_pixels()):
                flush(batch)
            if whole:
                batch.append((item, picture))
                # Batch only what is already decoded; never wait on the disk to fill one.
                ready = bool(pending) and pending[0][1].done()
                if len(batch) >= batch_size or not ready:
                    flush(batch)
            else:
                result = translator.translate(picture.pixels, settings.direction,
                                              settings.tile, batch_size)
                writing.append(encoders.submit(encode, result, picture, item, settings))
            drain(False)
        if not stopped:
            flush(batch)
        for _, future in pending:
            future.cancel()
        drain(True)
    return not stopped


def run(args: argparse.Namespace) -> int:
    from cyclestudio.core.modelfile import load_translator
    from cyclestudio.jobs.events import Control, RateMeter

    options.fill_defaults(args, options.TRANSLATE)  # checks ranges, names a bad flag
    control = Control(read_stdin=args.events)
    # The app that reads our events may go away (closed, crashed): then stop as on `stop`.
    reporter = Reporter(args.events, on_closed=lambda: control.put("stop"))
    tile = parse_tile(args.tile)
    engine: Callable[..., bool] = translate_items
    if args.ray is not None:  # the same batch over a Ray cluster's model actors
        from cyclestudio.jobs import ray_translate

        translator: Any = ray_translate.RayTranslator(Path(args.model), args)
        engine = ray_translate.translate_items
    else:
        translator = load_translator(Path(args.model), args.device, precision=args.precision)
    _, target = translator.model.domain_names(args.direction)
    suffix = safe_suffix(target) if args.suffix is None else args.suffix
    out_dir = Path(args.out)
    items, skipped = plan_items([Path(i) for i in args.inputs], out_dir, suffix, args.format,
                                args.overwrite)
    translator.compile = args.compile == "on" or (
        args.compile == "auto" and translator.device.type == "cpu" and len(items) >= 64
        and any(shutil.which(cc) for cc in ("c++", "g++", "clang++", "cl")))
    control.install_signal_handlers()
    total = len(items) + len(skipped)
    reporter.emit("started", total=total, device=str(translator.device),
                  model=str(Path(args.model).absolute()))
    outcomes: list[Outcome] = []
    meter = RateMeter()
    state = {"done": 0, "paused": False}
    meter.mark(0)
    started = time.perf_counter()

    def on_outcome(o: Outcome) -> None:
        outcomes.append(o)
        written = o.output is not None and o.status == "translated"
        reporter.emit("file", input=str(o.source.absolute()),
                      output=str(o.output.absolute()) if written else None, status=o.status,
                      reason=o.reason or ("; ".join(o.notes) if o.notes else None),
                      code=o.code or None)
        state["done"] += 1
        if o.status == "translated":
            meter.mark(state["done"])
        rate = meter.rate()
        left = total - state["done"]
        reporter.emit("progress", done=state["done"], total=total,
                      images_per_s=round(rate, 3) if rate else None,
                      eta_s=round(left / rate, 1) if rate else None)

    for o in skipped:
        on_outcome(o)

    def should_stop() -> bool:
        for command in control.poll():
            if command == "stop":
                return True
            if command == "pause":
                reporter.emit("paused", done=state["done"])
                while True:
                    command = control.wait(1.0)
                    if command == "stop":
                        return True
                    if command == "resume":
                        meter.reset()
                        reporter.emit("resumed", done=state["done"])
                        break
            elif command not in ("resume", "sample"):
                reporter.emit("warning", message=f"unknown command {command!r}")
        return control.stop_requested

    batch_size = args.batch_size or (1 if translator.device.type == "cpu" else 4)
    settings = Settings(args.direction, args.format, args.quality, tile, batch_size)
    finished = engine(translator, items, settings, on_outcome, should_stop)
    if translator.compile_error:
        reporter.emit("warning", message="torch.compile failed; translated without it",
                      hint=translator.compile_error)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("translated", "skipped", "failed")}
    if finished:
        reporter.emit("finished", **counts, seconds=round(time.perf_counter() - started, 2))
    else:
        reporter.emit("stopped", done=state["done"], **counts)
    reporter.summary(outcomes, out_dir, total)
    if not finished and control.stop_requested:
        return 130  # cut short by Ctrl-C or SIGTERM: a script must not carry on as if done
    return 1 if counts["failed"] else 0

