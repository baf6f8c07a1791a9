"""Planning a batch: which inputs there are, where each translation goes, and which
are skipped before any work (the output folder is never read as input, an output
never overwrites an input, the manifest says what was done before).

The plan is a stream of :class:`Item` (to translate) and :class:`Outcome` (decided
already): a folder of a million files costs no more memory than one of a thousand.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cyclestudio.core.imagescan import folder_key
from cyclestudio.errors import UserError


@dataclass(frozen=True)
class Item:
    """One input file and where its translation goes."""

    source: Path
    output: Path
    replace: bool = False  # may replace an existing output (--overwrite, or our own stale one)


# The `code` of an outcome: a stable name for its reason (docs/events.md).
OUTPUT_EXISTS = "output_exists"  # skipped: an output is there that is not ours to replace
DONE_BEFORE = "done_before"  # skipped: translated before (the output folder's manifest)
FAILED_BEFORE = "failed_before"  # skipped (watch): failed before with this very content
CANNOT_WRITE = "cannot_write"  # failed: the output could not be written (not the input's fault)


@dataclass
class Outcome:
    """What happened to one input."""

    source: Path
    output: Path | None
    status: str  # translated | skipped | failed
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    code: str = ""  # a stable name for the reason, for the app's own wording (docs/events.md)
    fingerprint: Any = None  # the input as it was read (manifest.Fingerprint), when it was


def safe_suffix(name: str) -> str:
    """A domain name made safe for file names: `_zebra`."""
    cleaned = re.sub(r"[^\w.-]+", "_", name.strip()).strip("_")
    return f"_{cleaned or 'translated'}"


def check_output_folder(inputs: Sequence[Path], out_dir: Path) -> None:
    """UserError for an input that does not exist, or an output folder that is an input
    folder itself (its outputs would be read as inputs on the next run)."""
    out_key = folder_key(out_dir)
    for given in inputs:
        given = Path(given)
        if not os.path.lexists(given):
            raise UserError(f"{given} does not exist", "check the path")
        if out_key is not None and given.is_dir() and folder_key(given) == out_key:
            raise UserError(
                f"--out {out_dir} is the input folder itself: its outputs would be mixed with "
                "the inputs and read as inputs on the next run",
                "choose another --out (a subfolder of it works: the output folder is never "
                "read as input)")


def iter_sources(inputs: Sequence[Path], out_dir: Path) -> Iterator[tuple[Path, Path]]:
    """(file, path relative to the output folder) for every input, folders walked in
    sorted order; the output folder is never walked."""
    from cyclestudio.core.imagescan import iter_images

    for given in inputs:
        given = Path(given)
        if given.is_dir():
            for f in iter_images(given, exclude=[out_dir]):
                yield f, f.relative_to(given)
        elif os.path.lexists(given):  # a file, or a link that is broken (it fails with why)
            yield given, Path(given.name)
        else:
            raise UserError(f"{given} does not exist", "check the path")


def count_inputs(inputs: Sequence[Path], out_dir: Path) -> int:
    """How many inputs :func:`iter_plan` will yield (a walk that keeps nothing)."""
    return sum(1 for _ in iter_sources(inputs, out_dir))


def iter_plan(
    inputs: Sequence[Path], out_dir: Path, suffix: str, fmt: str, overwrite: bool,
    manifest: Any = None, redo_gone: bool = True, retry_failed: bool = True,
) -> Iterator[Item | Outcome]:
    """Each input as an Item to translate, or an Outcome saying why it is skipped.

    Streams: only the output names claimed so far are remembered (as hashes).
    ``manifest`` (jobs/manifest.py): skip what was translated before from the same
    content with the same model and settings; replace our own stale outputs.
    ``redo_gone``: translate again when that earlier output has been moved or deleted
    (a batch re-run) or not (a watched folder, whose outputs are often taken away).
    ``retry_failed``: try again inputs that failed before with the same content.
    """
    from cyclestudio.core.imagecodec import output_format
    from cyclestudio.jobs import manifest as mf

    explicit = {_norm(p) for p in inputs if not Path(p).is_dir()}
    claimed: set[int] = set()
    for source, rel in iter_sources(inputs, out_dir):
        _, extension = output_format(fmt, source)
        output = out_dir / rel.parent / f"{source.stem}{suffix}{extension}"
        key = _norm(output)
        if key in explicit:
            yield Outcome(source, None, "skipped", "the output would overwrite an input (give "
                          "--suffix or another --out)")
            continue
        if hash(key) in claimed:
            yield Outcome(source, None, "skipped", "another input has the same output name "
                          f"({output.name}); give --suffix, --format or rename one")
            continue
        claimed.add(hash(key))
        if overwrite:
            yield Item(source, output, replace=True)
            continue
        decision = manifest.decide(source, output) if manifest is not None else (
            mf.FOREIGN if output.exists() else mf.NEW)
        if decision == mf.NEW or (decision == mf.GONE and redo_gone) or (
                decision == mf.FAILED and retry_failed):
            yield Item(source, output)
        elif decision == mf.STALE:
            yield Item(source, output, replace=True)
        elif decision == mf.DONE:
            yield Outcome(source, output, "skipped", "already translated with this model and "
                          "these settings", code=DONE_BEFORE)
        elif decision == mf.GONE:
            yield Outcome(source, None, "skipped", "translated before with this model; its "
                          "output has been moved or deleted since", code=DONE_BEFORE)
        elif decision == mf.FAILED:
            yield Outcome(source, None, "skipped", "failed before and has not changed since",
                          code=FAILED_BEFORE)
        else:
            yield Outcome(source, output, "skipped", "output exists (use --overwrite to "
                          "replace it)", code=OUTPUT_EXISTS)


def _norm(path: Path) -> str:
    return os.path.normcase(os.path.abspath(path))


def plan_items(
    inputs: Sequence[Path], out_dir: Path, suffix: str, fmt: str, overwrite: bool,
    manifest: Any = None,
) -> tuple[list[Item], list[Outcome]]:
    """Pair each input with its output; list the inputs skipped before any work, and why."""
    items: list[Item] = []
    skipped: list[Outcome] = []
    for planned in iter_plan(inputs, out_dir, suffix, fmt, overwrite, manifest):
        (items if isinstance(planned, Item) else skipped).append(planned)  # type: ignore[arg-type]
    return items, skipped
