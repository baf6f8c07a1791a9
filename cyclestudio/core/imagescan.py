"""Finding image files: what counts as an image, and why a file cannot be read.

Torch-free and numpy-free, so the app uses it too. Decoding pixels (for training and
for translation) and writing them back is core/imagecodec.py.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from cyclestudio.errors import UserError

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".tga"}
)
# Files operating systems leave in image folders; never images, never reported.
OS_JUNK = frozenset({"thumbs.db", ".ds_store", "desktop.ini", "ehthumbs.db"})

# Refuse images over ~180 megapixels (PIL's own bomb limit is at 2× its warning).
MAX_PIXELS = 180_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


@dataclass(frozen=True)
class BadFile:
    """A file that looks like an image but cannot be used, and why."""

    path: Path
    reason: str


def is_image_name(path: Path) -> bool:
    """True for a file whose name says it is an image (and is not OS junk or hidden)."""
    name = path.name
    if name.lower() in OS_JUNK or name.startswith("._") or name.startswith("."):
        return False
    return path.suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: Path, recursive: bool = True,
                exclude: Iterable[Path] = ()) -> list[Path]:
    """Image files in ``folder`` (and its subfolders), sorted by path.

    Hidden folders, folders in ``exclude`` (an output folder inside the input) and
    symbolic links to folders are not entered; a link that loops or points nowhere is
    listed like any file, so that reading it says why it cannot be used.
    """
    return list(iter_images(folder, recursive, exclude))


def iter_images(folder: Path, recursive: bool = True,
                exclude: Iterable[Path] = ()) -> Iterator[Path]:
    """:func:`list_images` one file at a time, in the same order, holding one folder's
    listing at a time (a tree of a million files costs no more than its largest folder)."""
    skip = {key for key in (folder_key(Path(e)) for e in exclude) if key is not None}
    yield from _walk(Path(folder), recursive, skip)


def folder_key(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a folder: the same folder whatever path, link or case names it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _walk(folder: Path, recursive: bool, skip: set[tuple[int, int]]) -> Iterator[Path]:
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            if recursive and not entry.name.startswith("."):
                st = entry.stat(follow_symlinks=False)
                if (st.st_dev, st.st_ino) not in skip:
                    yield from _walk(Path(entry.path), recursive, skip)
            continue
        path = Path(entry.path)
        if not is_image_name(path):
            continue
        if entry.is_symlink() and _links_to_folder(entry.path):
            continue  # never entered, as os.walk never entered one
        yield path


def _links_to_folder(path: str) -> bool:
    try:
        return os.path.isdir(path)
    except OSError:
        return False


def why_unreadable(path: Path) -> str | None:
    """None if ``path`` decodes as an image, else a short reason a person understands."""
    try:
        if path.stat().st_size == 0:
            return "empty file"
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            im.load()
    except PermissionError:
        return "no permission to read it"
    except Image.DecompressionBombError:
        return f"too large (over {MAX_PIXELS // 1_000_000} megapixels)"
    except FileNotFoundError:
        return link_problem(path) or "file not found"
    except Image.UnidentifiedImageError:
        return "not an image PIL can read"
    except (OSError, SyntaxError, ValueError) as exc:
        link = link_problem(path)
        if link:
            return link
        text = str(exc) or type(exc).__name__
        if "truncated" in text.lower():
            return "truncated (the file ends early)"
        return f"cannot decode: {text}"
    return None


def link_problem(path: Path) -> str | None:
    """Why a symbolic link cannot be read (it loops, or points nowhere), else None."""
    try:
        if not os.path.islink(path):
            return None
        target = os.readlink(path)
    except OSError:
        return None
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link that loops back on itself"
        if exc.errno == errno.ENOENT:
            return f"a symbolic link to {target!r}, which does not exist"
        return None
    return None


def scan(paths: Iterable[Path], check: bool = True) -> tuple[list[Path], list[BadFile]]:
    """Every readable image under ``paths`` (files or folders), and the unreadable ones."""
    candidates: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            candidates += list_images(path)
        elif path.is_file():
            candidates.append(path)
        else:
            raise UserError(f"{path} does not exist", "check the path")
    if not check:
        return candidates, []
    # Decoding releases the GIL, so threads check a large folder on every core.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        reasons = list(pool.map(why_unreadable, candidates, chunksize=16))
    good = [f for f, r in zip(candidates, reasons, strict=True) if r is None]
    bad = [BadFile(f, r) for f, r in zip(candidates, reasons, strict=True) if r is not None]
    return good, bad
