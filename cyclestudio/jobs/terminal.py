"""What a person at a terminal sees of a job: the one place events become text.

Every job (train, translate, watch, export) emits the same events with or without
``--events``; without it, :class:`Terminal` draws them: a progress bar that redraws
itself on a terminal (one line per update when stderr is a file), one sentence for
each other event, warnings and errors marked as such. The app never sees this text.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, TextIO

BAR_WIDTH = 24


def fmt_time(seconds: float | None) -> str:
    """``mm:ss`` or ``h:mm:ss``; ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def resume_command(run: object) -> str:
    """The command that continues the run folder ``run``, ready to paste in any folder."""
    import shlex

    return f"cyclestudio train --resume {shlex.quote(str(run))}" if run else (
        "cyclestudio train --resume RUN_FOLDER")


def validation_line(iteration: object, figures: dict[str, Any], best: bool,
                    seconds: float | None = None) -> str:
    """A validation pass in one line: per direction, the distance to the target domain
    against the untranslated inputs', the cycle error, and PSNR against truth if known."""
    parts = []
    for side, arrow in (("A", "A→B"), ("B", "B→A")):
        if f"swd_{side}" not in figures:
            continue
        text = (f"{arrow} distance {figures[f'swd_{side}']:.3f} "
                f"(input {figures[f'swd_{side}_input']:.3f}), "
                f"cycle {figures[f'cycle_{side}']:.3f}")
        if f"psnr_{side}" in figures:
            text += (f", {figures[f'psnr_{side}']:.2f} dB vs truth "
                     f"(input {figures[f'psnr_{side}_input']:.2f} dB)")
        parts.append(text)
    took = f" ({seconds:.1f} s)" if isinstance(seconds, (int, float)) else ""
    return (f"validation at {iteration}{took}: " + "; ".join(parts)
            + (" — best so far" if best else ""))


def progress_line(f: dict[str, Any]) -> str | None:
    """A progress event as a bar, or None when there is no end to measure against (a
    watched folder)."""
    training = "iteration" in f
    done = f.get("iteration") if training else f.get("done")
    total = f.get("total_iterations") if training else f.get("total")
    if not total:
        return None
    done = done or 0
    filled = min(BAR_WIDTH, int(BAR_WIDTH * done / total))
    rate = f.get("images_per_s")
    losses = " ".join(f"{k}={v:.3f}" for k, v in (f.get("losses") or {}).items())
    return (f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}"
            + (f"  epoch {f['epoch']}" if "epoch" in f else "")
            + (f"  {rate:.2f} img/s" if rate else "")
            + f"  ETA {fmt_time(f.get('eta_s'))}"
            + (f"  {losses}" if losses else ""))


def _training(event: str, f: dict[str, Any]) -> str | None:
    if event == "started":
        images = f.get("images", {})
        verb = f"Resuming at iteration {f.get('iteration')}" if f.get("resumed") else "Training"
        colour = f.get("colour_start")
        sharp = f.get("sharpness_start")
        return (
            f"{verb}: {f.get('generator')} + {f.get('discriminator')} on {f.get('device')}, "
            f"{images.get('A')} A and {images.get('B')} B images, "
            f"{f.get('iterations_per_epoch')} iterations per epoch, until iteration "
            f"{f.get('total_iterations')}\n  run folder: {f.get('run')}"
            + (f"\n  colour start: {colour['note']} (colours move {colour['distance']:.3f} "
               f"between the domains, {colour['floor']:.3f} within one; "
               f"{colour['seconds']:.1f} CPU-s)" if colour and colour.get("floor") else "")
            + (f"\n  sharpness start: {sharp['note']}"
               + (f" (a filter between the domains moves {sharp['change']:.1%} of the "
                  f"detail, one within a domain {sharp['floor']:.1%})"
                  if sharp.get("floor") else "") if sharp else "")
            + (f"\n  starts: {f['starts_seconds']:.1f} CPU-s with reading the images"
               if f.get("starts_seconds") else "")
        )
    if event == "validation":
        return validation_line(f.get("iteration"), f.get("figures") or {}, bool(f.get("best")),
                               f.get("seconds"))
    if event == "checkpoint":
        return f"saved {f.get('path')} at iteration {f.get('iteration')}"
    if event == "sample":
        return f"sample {f.get('path')}"
    if event in ("paused", "resumed"):
        return f"{event} at iteration {f.get('iteration')}"
    if event == "stopped":
        return (f"stopped at iteration {f.get('iteration')}, saved {f.get('checkpoint')}; "
                f"continue with: {resume_command(f.get('run'))}")
    if event == "finished":
        model = f.get("model")
        return f"finished at iteration {f.get('iteration')}" + (
            f"; model: {model}" if model else "")
    return None


def _files(event: str, f: dict[str, Any]) -> str | None:
    """translate and watch."""
    if event == "started":
        backend = f.get("backend", "torch")
        if f.get("watching"):
            how = "polling" if f.get("notifications") == "polling" else "notifications"
            return (f"watching {f['watching']} → {f.get('out')} ({how}, {backend} on "
                    f"{f.get('device')}); Ctrl-C to stop")
        total = f.get("total")
        return (f"translating {total} image{'' if total == 1 else 's'} with {f.get('model')} on "
                f"{f.get('device')} ({backend})")
    if event == "file":  # only a watched folder's files get a line each (see Terminal)
        if f.get("status") == "translated":
            return f"translated: {f.get('input')} → {f.get('output')}"
        moved = f.get("moved_to")
        return (f"{f.get('status')}: {f.get('input')} ({f.get('reason')})"
                + (f"; moved to {moved}" if moved else ""))
    if event in ("paused", "resumed"):
        return f"{event} after {f.get('done')} files"
    if event == "stopped":
        if "translated" in f:  # a watch's end
            return (f"stopped: translated {f['translated']}, skipped {f.get('skipped', 0)}, "
                    f"failed {f.get('failed', 0)}")
        return "stopped on request"
    return None


def _export(event: str, f: dict[str, Any]) -> str | None:
    if event == "started":
        return f"exporting {f.get('model')} as {f.get('format')} ({f.get('direction')})"
    if event == "parity":
        height, width = f.get("size") or (0, 0)
        psnr = f.get("psnr_db")
        verdict = "ok" if f.get("ok") else f"MISMATCH (tolerance {f.get('tolerance', 0):.1e})"
        return (f"  parity {f.get('direction')} {f.get('image')} {width}×{height}: max |Δ| "
                f"{f.get('max_abs_error', 0):.2e}, PSNR "
                f"{'∞' if psnr is None else f'{psnr:.1f} dB'}: {verdict}")
    if event == "finished":
        return "\n".join(_written(Path(path)) for path in f.get("files") or [])
    return None


def _written(path: Path) -> str:
    """One exported file: where, how big, and for a .csmodel what it holds."""
    try:
        size = f"{path.stat().st_size / 1e6:.1f} MB"
    except OSError:
        return f"wrote {path}"
    if path.suffix != ".csmodel":
        return f"wrote {path} ({size})"
    from cyclestudio.core.modelfile import read_info

    info = read_info(path)
    return (f"wrote {path} ({size}): {info.generator} {info.options}, {info.a_name} ↔ "
            f"{info.b_name}, trained at {info.size} px, iteration {info.iteration}")


class Terminal:
    """Draws one job's events for a person. ``job``: ``train``, ``translate``, ``watch``
    or ``export``. Lines go to stderr, except a watched folder's one line per file (its
    output, like a log, goes to stdout) and export's report of what it checked and
    wrote (stdout)."""

    def __init__(self, job: str = "train", err: TextIO | None = None,
                 out: TextIO | None = None) -> None:
        self.job = job
        self.err = err or sys.stderr
        self.out = out or sys.stdout
        self.tty = getattr(self.err, "isatty", lambda: False)()
        self.bar_open = False

    def show(self, event: str, f: dict[str, Any]) -> None:
        """Draw one event."""
        if event == "progress":
            text = progress_line(f)
            if text is None:
                return
            if self.tty:
                self.err.write("\r\033[K" + text)
                self.bar_open = True
            elif self.job == "train":  # a log file gets the bar at each update
                self.err.write(text + "\n")
            self.err.flush()
            return
        self.close_bar()
        message, stream = f.get("message"), self.err
        if event == "error":
            hint = f.get("hint")
            text: str | None = f"error: {message}" + (f" ({hint})" if hint else "")
        elif event == "warning":
            text = f"warning: {message}"
        elif message:
            text = str(message)
        elif self.job == "train":
            text = _training(event, f)
        elif self.job == "export":  # its report is its output, on stdout as before
            text, stream = _export(event, f), self.out
        else:
            if event == "file" and self.job != "watch":
                return  # a batch's files are summed up at its end (translate.Summary)
            text = _files(event, f)
            if self.job == "watch" and event in ("file", "stopped"):
                stream = self.out
        if text:
            stream.write(text + "\n")
            stream.flush()

    def close_bar(self) -> None:
        """End a bar drawn in place, so the next line starts on a line of its own."""
        if self.bar_open:
            self.err.write("\n")
            self.err.flush()
            self.bar_open = False
