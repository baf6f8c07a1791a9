"""Finding image files: what counts as an image, and why a file cannot be read.

Torch-free and numpy-free, so the app uses it too. Decoding pixels (for training and
for translation) and writing them back is core/imagecodec.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
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


def list_images(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files in ``folder`` (and its subfolders), sorted by path."""
    if recursive:
        found = [
            Path(root) / f
            for root, dirs, files in os.walk(folder)
            for f in files
            if not any(part.startswith(".") for part in Path(root).relative_to(folder).parts)
        ]
    else:
        found = [p for p in folder.iterdir() if p.is_file()]
    return sorted(p for p in found if is_image_name(p))


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
        return "file not found"
    except Image.UnidentifiedImageError:
        return "not an image PIL can read"
    except (OSError, SyntaxError, ValueError) as exc:
        text = str(exc) or type(exc).__name__
        if "truncated" in text.lower():
            return "truncated (the file ends early)"
        return f"cannot decode: {text}"
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
