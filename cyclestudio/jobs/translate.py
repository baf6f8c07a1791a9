"""`cyclestudio translate`: convert files and folders with a model, at their own size.

The file list is planned and streamed (a folder of a million files costs no more
memory than one of a thousand). Decoding and encoding run in worker threads while
the network computes; small images of equal size are batched; large images go through
in tiles. A bad file is reported with its reason and the rest of the batch goes on.
The output folder's manifest (jobs/manifest.py) makes a batch restartable: each input
is translated once per content, model and settings. Each output is published in one
atomic step that never replaces a file it does not own, so two processes writing into
one folder never overwrite each other.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cyclestudio import options
from cyclestudio.errors import UserError
from cyclestudio.jobs.batch_report import Reporter, Tally
from cyclestudio.jobs.planning import (
    CANNOT_WRITE,
    DONE_BEFORE,
    FAILED_BEFORE,
    OUTPUT_EXISTS,
    Item,
    Outcome,
    check_output_folder,
    count_inputs,
    iter_plan,
    iter_sources,
    plan_items,
    safe_suffix,
)

# The planning and reporting names are part of this module's interface (watch, Ray
# and the benchmarks take them from here).
__all__ = ["CANNOT_WRITE", "DONE_BEFORE", "FAILED_BEFORE", "OUTPUT_EXISTS", "Item", "Outcome",
           "Reporter", "Settings", "Tally", "check_output_folder", "count_inputs", "iter_plan",
           "iter_sources", "plan_items", "run", "safe_suffix", "translate_items"]

HELP = "translate images (files or folders, recursively) with a model file or a run folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="a .csmodel file, a run folder, or an exported .onnx")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (a folder input's tree is mirrored under it)")
    options.add_arguments(p, options.TRANSLATE)
    p.add_argument("--failed-list", metavar="FILE", default=None,
                   help="write the inputs that failed to FILE, one 'path<TAB>reason' a line")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="translate on a Ray cluster (pip install \"cyclestudio[ray]\"): "
                   "its address, or none to start Ray on this machine; inputs and outputs "
                   "must be on storage every node reaches")
    p.add_argument("--events", action="store_true", help="JSON-lines events for the app")


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


@dataclass(frozen=True)
class Settings:
    """How each file is translated and written."""

    direction: str = "a2b"
    fmt: str = "same"
    quality: int = 95
    tile: int | str | None = "auto"
    batch_size: int = 4  # at most this many images in one batch
    batch_pixels: int | None = None  # and at most this many pixels (None: what memory allows)


# On a CPU, batching pays only for small images (per-call overhead); a 64² image is
# 3.6× cheaper in a batch of 16, a 512² one ~30% dearer in a batch of 4 (measured).
CPU_BATCH_PIXELS = 256 * 256
CPU_MAX_BATCH = 64


def auto_batch(device_type: str, given: int | None) -> tuple[int, int | None]:
    """(batch_size, batch_pixels) for ``--batch-size`` (None: by the device)."""
    if given:
        return given, None
    if device_type == "cpu":
        return CPU_MAX_BATCH, CPU_BATCH_PIXELS
    return 4, None


def encode(result: Any, picture: Any, item: Item, settings: Settings) -> Outcome:
    """Write one translated image atomically; the outcome says what happened.

    The output is published in one step: it replaces an existing file only when
    ``item.replace`` says so, so of two processes writing one name exactly one wins.
    A full disk raises (UserError): every later file would fail the same way.
    """
    from cyclestudio.core.animation import write_animation
    from cyclestudio.core.imagecodec import (
        make_image,
        output_format,
        save_kwargs,
        write_image_atomic,
    )

    pil_format, _ = output_format(settings.fmt, item.source)
    try:
        if getattr(picture, "animation", None) is not None:  # result: one array per frame
            notes = write_animation(result, picture.animation, item.output, pil_format,
                                    settings.quality, exclusive=not item.replace)
        else:
            image, notes = make_image(result, picture, pil_format)
            write_image_atomic(image, item.output, pil_format, exclusive=not item.replace,
                               **save_kwargs(pil_format, settings.quality, picture))
        notes = [*getattr(picture, "notes", []), *notes]
    except FileExistsError:
        return Outcome(item.source, item.output, "skipped", "output exists (written by "
                       "another process meanwhile; use --overwrite to replace it)",
                       code=OUTPUT_EXISTS)
    except OSError as exc:
        return Outcome(item.source, None, "failed", f"cannot write {item.output}: {exc}",
                       code=CANNOT_WRITE)
    return Outcome(item.source, item.output, "translated", notes=notes)


def read_input(item: Item, channels: int) -> tuple[Any, Any]:
    """(Picture or BadImage, Fingerprint or None): one read of the file, decoded from memory
    so the fingerprint is of exactly what was translated."""
    from cyclestudio.core.imagecodec import BadImage, read_picture
    from cyclestudio.core.imagescan import why_unreadable
    from cyclestudio.jobs.manifest import read_fingerprinted

    try:
        data, fingerprint = read_fingerprinted(item.source)
    except OSError:
        return BadImage(why_unreadable(item.source) or "cannot read it"), None
    try:
        return read_picture(item.source, channels, data=data), fingerprint
    except BadImage as bad:
        return bad, fingerprint


def translate_items(
    translator: Any,
    items: Iterable[Item | Outcome],
    settings: Settings,
    on_outcome: Callable[[Outcome], None],
    should_stop: Callable[[], bool] = lambda: False,
    workers: int | None = None,
) -> bool:
    """Translate ``items`` in order, overlapping decoding and encoding with compute.

    ``items`` may be a stream, and may hold Outcomes (skips decided while planning),
    which are passed on in their place. Calls ``on_outcome`` once per entry, in order;
    each outcome carries the input's fingerprint when it was read. Returns False if
    stopped early.
    """
    from cyclestudio.core.imagecodec import BadImage

    # Few threads: decoding and encoding overlap compute but must not crowd it out.
    workers = workers or max(1, min(4, (os.cpu_count() or 1) // 2))
    channels = translator.channels
    batch_size = max(1, settings.batch_size)
    pixel_cap = settings.batch_pixels or translator.max_pixels()
    longest = batch_size * 2 + workers
    state = {"pixels": 0}  # the last decoded image's size, to size the look-ahead

    def lookahead() -> int:
        if not state["pixels"]:
            return workers + 2
        return max(workers + 2, min(longest, 2 * pixel_cap // state["pixels"] + workers))

    def write(result: Any, picture: Any, item: Item, fingerprint: Any) -> Outcome:
        outcome = encode(result, picture, item, settings)
        outcome.fingerprint = fingerprint
        return outcome

    stopped = False
    with ThreadPoolExecutor(workers, thread_name_prefix="decode") as decoders, \
            ThreadPoolExecutor(workers, thread_name_prefix="encode") as encoders:
        pending: deque[tuple[Item | Outcome, Future[Any] | None]] = deque()
        writing: deque[Future[Outcome] | Outcome] = deque()
        queue = iter(items)

        def refill() -> None:
            while len(pending) < lookahead():
                item = next(queue, None)
                if item is None:
                    return
                if isinstance(item, Outcome):
                    pending.append((item, None))
                else:
                    pending.append((item, decoders.submit(read_input, item, channels)))

        def drain(block: bool) -> None:
            # Never let finished results pile up behind a slow disk: wait past a bound.
            while writing and (block or len(writing) > longest or not isinstance(
                    writing[0], Future) or writing[0].done()):
                head = writing.popleft()
                on_outcome(head.result() if isinstance(head, Future) else head)

        def flush(batch: list[tuple[Item, Any, Any]]) -> None:
            if not batch:
                return
            results = translator.translate_batch([p.pixels for _, p, _ in batch],
                                                 settings.direction)
            for (item, picture, fingerprint), result in zip(batch, results, strict=True):
                writing.append(encoders.submit(write, result, picture, item, fingerprint))
            batch.clear()

        refill()
        batch: list[tuple[Item, Any, Any]] = []
        while pending:
            if should_stop():
                stopped = True
                break
            item, future = pending.popleft()
            refill()
            if future is None:  # decided while planning
                flush(batch)
                writing.append(item)  # type: ignore[arg-type]
                drain(False)
                continue
            picture, fingerprint = future.result()
            if isinstance(picture, BadImage):
                flush(batch)
                writing.append(Outcome(item.source, None, "failed", picture.reason,
                                       fingerprint=fingerprint))
                drain(False)
                continue
            height, width = picture.pixels.shape[:2]
            state["pixels"] = height * width
            if picture.animation is not None:  # every frame, then one animated file
                flush(batch)
                frames = [translator.translate(frame, settings.direction, settings.tile,
                                               batch_size)
                          for frame in picture.animation.frames]
                writing.append(encoders.submit(write, frames, picture, item, fingerprint))
                drain(False)
                continue
            whole = translator.plan(height, width, settings.tile) is None
            if batch and (not whole or batch[0][1].pixels.shape != picture.pixels.shape
                          or (len(batch) + 1) * height * width > pixel_cap):
                flush(batch)
            if whole:
                batch.append((item, picture, fingerprint))
                # Batch only what is already decoded; never wait on the disk to fill one.
                ready = bool(pending) and (pending[0][1] is None or pending[0][1].done())
                if (len(batch) >= batch_size or (len(batch) + 1) * height * width > pixel_cap
                        or not ready):
                    flush(batch)
            else:
                result = translator.translate(picture.pixels, settings.direction,
                                              settings.tile, batch_size)
                writing.append(encoders.submit(write, result, picture, item, fingerprint))
            drain(False)
        if not stopped:
            flush(batch)
        for _, future in pending:
            if future is not None:
                future.cancel()
        drain(True)
    return not stopped


_LIBC: list[Any] = []


def release_free_memory() -> None:
    """Hand freed heap memory back to the OS (glibc keeps it, fragmented, otherwise), so a
    batch of a million files ends as small as it began."""
    if not sys.platform.startswith("linux"):
        return
    if not _LIBC:
        import ctypes

        try:
            _LIBC.append(ctypes.CDLL("libc.so.6").malloc_trim)
        except (OSError, AttributeError):
            _LIBC.append(None)
    if _LIBC[0] is not None:
        _LIBC[0](0)


def compile_pays(device_type: str, items: int, first_pixels: int) -> bool:
    """``--compile auto``: on for CPU batches of 64 or more images of 256² or larger.

    Compiling costs ~30 s once; on small images the per-file overhead dominates and
    that time is never won back.
    """
    return (device_type == "cpu" and items >= 64 and first_pixels >= 256 * 256
            and any(shutil.which(cc) for cc in ("c++", "g++", "clang++", "cl")))


def _first_pixels(inputs: Sequence[Path], out_dir: Path) -> int:
    """The first input's pixel count, read from its header (0 if it cannot be)."""
    from PIL import Image

    for source, _ in iter_sources(inputs, out_dir):
        try:
            with Image.open(source) as im:
                return im.width * im.height
        except Exception:  # noqa: BLE001 - a bad first file: it is reported later
            return 0
    return 0


def pick_direction(translator: Any, given: str | None, default: str) -> str:
    """The direction given, else the model's only one (an exported .onnx), else the default."""
    directions = getattr(translator, "directions", options.DIRECTIONS)
    direction = directions[0] if given is None and default not in directions else (
        given or default)
    check = getattr(translator.model, "check", None)
    if check is not None:
        check(direction)  # a one-direction model asked for the other: say so before any work
    return direction


def run(args: argparse.Namespace) -> int:
    from cyclestudio.atomic import remove_stale_temps
    from cyclestudio.core.modelfile import load_translator
    from cyclestudio.jobs.events import Control, RateMeter
    from cyclestudio.jobs.manifest import Manifest, model_key, settings_key

    direction = args.direction
    options.fill_defaults(args, options.TRANSLATE)  # checks ranges, names a bad flag
    control = Control(read_stdin=args.events)
    # The app that reads our events may go away (closed, crashed): then stop as on `stop`.
    reporter = Reporter(args.events, on_closed=lambda: control.put("stop"))
    tile = parse_tile(args.tile)
    inputs = [Path(i) for i in args.inputs]
    out_dir = Path(args.out)
    check_output_folder(inputs, out_dir)
    engine: Callable[..., bool] = translate_items
    if args.ray is not None:  # the same batch over a Ray cluster's model actors
        from cyclestudio.jobs import ray_translate

        translator: Any = ray_translate.RayTranslator(Path(args.model), args)
        engine = ray_translate.translate_plan
    else:
        translator = load_translator(Path(args.model), args.device, precision=args.precision,
                                     backend=args.backend)
    args.direction = pick_direction(translator, direction, args.direction)
    _, target = translator.model.domain_names(args.direction)
    suffix = safe_suffix(target) if args.suffix is None else args.suffix
    if out_dir.is_dir():  # what a killed translation left half-written
        remove_stale_temps(out_dir, recursive=True)
    manifest = Manifest(out_dir, model_key(Path(args.model)),
                        settings_key(args.direction, args.format, args.quality), once=True)
    total = count_inputs(inputs, out_dir)
    translator.compile = args.compile == "on" or (
        args.compile == "auto" and compile_pays(translator.device.type, total,
                                                _first_pixels(inputs, out_dir)))
    control.install_signal_handlers()
    reporter.emit("started", total=total, device=str(translator.device),
                  model=str(Path(args.model).absolute()),
                  backend=getattr(translator, "backend", "torch"))
    tally = Tally()
    meter = RateMeter()
    state = {"done": 0}
    meter.mark(0)
    started = time.perf_counter()

    def on_outcome(o: Outcome) -> None:
        tally.add(o)
        if state["done"] % 2000 == 1999:
            release_free_memory()
        if o.status == "translated" and o.output is not None:
            manifest.record(o.source, o.fingerprint, "translated", o.output)
        elif o.status == "failed" and o.fingerprint is not None:
            manifest.record(o.source, o.fingerprint, "failed", reason=o.reason)
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

    batch_size, batch_pixels = auto_batch(translator.device.type, args.batch_size)
    settings = Settings(args.direction, args.format, args.quality, tile, batch_size,
                        batch_pixels)
    plan = iter_plan(inputs, out_dir, suffix, args.format, args.overwrite, manifest)
    try:
        finished = engine(translator, plan, settings, on_outcome, should_stop)
    finally:
        manifest.close()
        if args.failed_list:
            tally.write_failed_list(Path(args.failed_list))
        if args.ray == "" and out_dir.is_dir():
            # A local Ray instance's workers are all gone now: what one that died was
            # writing is stale at once (on a cluster, only the usual age rule is safe).
            remove_stale_temps(out_dir, recursive=True, min_age_s=0)
    if translator.compile_error:
        reporter.emit("warning", message="torch.compile failed; translated without it",
                      hint=translator.compile_error)
    counts = tally.counts
    if finished:
        reporter.emit("finished", **counts, seconds=round(time.perf_counter() - started, 2))
    else:
        reporter.emit("stopped", done=state["done"], **counts)
    reporter.summary(tally, out_dir, total)
    if not finished and control.stop_requested:
        return 130  # cut short by Ctrl-C or SIGTERM: a script must not carry on as if done
    return 1 if counts["failed"] else 0
