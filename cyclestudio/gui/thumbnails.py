"""Thumbnails made off the UI thread and cached on disk (keyed by path, mtime and size)."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections import OrderedDict
from pathlib import Path

from PIL import Image, ImageOps
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap

from cyclestudio.gui.settings import cache_dir

SIZE = 96
MEMORY_ITEMS = 3000


def cache_key(path: str) -> str | None:
    """The disk-cache name of ``path``'s thumbnail; None if the file is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    text = f"{os.path.abspath(path)}|{st.st_mtime_ns}|{st.st_size}|{SIZE}"
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


def small_pil(path: str, side: int) -> Image.Image | None:
    """``path`` decoded upright and shrunk to fit ``side``×``side``, as RGBA; None if unreadable."""
    try:
        with Image.open(path) as im:
            im.draft("RGB", (side * 2, side * 2))  # JPEG: decode at a reduced scale
            im = ImageOps.exif_transpose(im)
            im.thumbnail((side, side))
            return im.convert("RGBA")
    except Exception:  # noqa: BLE001 - any decoder failure just means "no picture"
        return None


def to_qimage(im: Image.Image) -> QImage:
    """An RGBA PIL image as a QImage that owns its pixels."""
    data = im.tobytes()
    image = QImage(data, im.width, im.height, im.width * 4, QImage.Format.Format_RGBA8888)
    return image.copy()  # own the pixels; ``data`` goes away


def make_thumbnail(path: str, folder: Path) -> QImage | None:
    """Read the cached thumbnail of ``path`` or make and cache it; None if unreadable."""
    key = cache_key(path)
    if key is None:
        return None
    cached = folder / key[:2] / f"{key}.png"
    if cached.exists():
        image = QImage(str(cached))
        if not image.isNull():
            return image
    im = small_pil(path, SIZE)
    if im is None:
        return None
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        im.save(tmp, "PNG")
        os.replace(tmp, cached)
    except OSError:
        pass  # a read-only cache only costs speed
    return to_qimage(im)


class _Signals(QObject):
    made = Signal(str, object)


class _Job(QRunnable):
    def __init__(self, path: str, folder: Path, signals: _Signals) -> None:
        super().__init__()
        self.path, self.folder, self.signals = path, folder, signals

    def run(self) -> None:
        self.signals.made.emit(self.path, make_thumbnail(self.path, self.folder))


class ThumbnailCache(QObject):
    """Pixmaps by path: ``get`` answers from memory or queues a job; ``ready`` follows.

    Newer requests run first, so the images on screen after a fast scroll come
    before the ones scrolled past.
    """

    ready = Signal(str)

    def __init__(self, parent: QObject | None = None, threads: int = 2) -> None:
        super().__init__(parent)
        self.folder = cache_dir() / "thumbnails"
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._memory: OrderedDict[str, QPixmap | None] = OrderedDict()
        self._pending: set[str] = set()
        self._order = itertools.count()
        self._signals = _Signals(self)
        self._signals.made.connect(self._made)

    def get(self, path: str) -> QPixmap | None:
        """The thumbnail if it is ready, else None (and it is made in the background)."""
        if path in self._memory:
            self._memory.move_to_end(path)
            return self._memory[path]
        if path not in self._pending:
            self._pending.add(path)
            self.pool.start(_Job(path, self.folder, self._signals), next(self._order) % 2**30)
        return None

    def failed(self, path: str) -> bool:
        """True if the image was tried and gave no thumbnail."""
        return path in self._memory and self._memory[path] is None

    def _made(self, path: str, image: QImage | None) -> None:
        self._pending.discard(path)
        self._memory[path] = QPixmap.fromImage(image) if image is not None else None
        while len(self._memory) > MEMORY_ITEMS:
            self._memory.popitem(last=False)
        self.ready.emit(path)

    def forget(self) -> None:
        """Drop queued jobs (a new dataset replaces the old one)."""
        self.pool.clear()
        self._pending.clear()

    def wait(self, msecs: int = 10000) -> bool:
        """Wait for the running jobs (tests and shutdown)."""
        return self.pool.waitForDone(msecs)
