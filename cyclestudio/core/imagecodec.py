"""Decoding image files into pixels, and encoding translated pixels back into files.

Reading applies EXIF orientation and brings any mode (greyscale, palette, CMYK,
16-bit) to what the model takes, the same way for training (:func:`load_rgb`, 8-bit
RGB for the augmentations) and for translation (:func:`read_picture`, which also
splits off alpha, carried through untouched, and keeps the ICC profile and EXIF
block). 16-bit means 0..65535 whatever the brightest pixel is, and CMYK goes through
its embedded profile, in both. Writing picks the format, puts the alpha back, keeps
ICC and EXIF where the format allows, and renames a finished temp file into place.

Which files are images, and whether they can be read at all, is core/imagescan.py.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from cyclestudio.core.animation import Animation, is_animated, read_animation
from cyclestudio.core.imagescan import MAX_PIXELS, why_unreadable

# PIL format name and file extension for each --format choice.
_WRITERS = {"png": ("PNG", ".png"), "jpg": ("JPEG", ".jpg"), "webp": ("WEBP", ".webp"),
            "tiff": ("TIFF", ".tif"), "bmp": ("BMP", ".bmp")}
_BY_EXTENSION = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".webp": "webp",
                 ".tif": "tiff", ".tiff": "tiff", ".bmp": "bmp"}
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")
_ORIENTATION = 0x0112  # the EXIF tag


class BadImage(Exception):
    """An input that cannot be translated, with a reason a person understands."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Picture:
    """A decoded input: pixels for the model, and what goes back into the output."""

    pixels: np.ndarray  # (H, W, C) uint8 or uint16; C is the model's channel count
    alpha: np.ndarray | None  # (H, W), same dtype as pixels, or None
    bits: int  # 8 or 16
    icc: bytes | None  # kept only when its colour space matches the output's
    exif: bytes | None  # orientation reset to upright
    animation: Animation | None = None  # every frame, when the input is animated
    notes: list[str] = field(default_factory=list)  # what the output cannot keep


def _icc_space(icc: bytes) -> str | None:
    """The ICC profile's colour space ('RGB', 'GRAY', 'CMYK', …), or None if unreadable."""
    # Header byte 16..20 is the data colour space signature.
    if len(icc) < 20:
        return None
    return icc[16:20].decode("ascii", "replace").strip().upper()


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """Through the embedded profile to sRGB where there is one, else PIL's plain formula."""
    if icc:
        try:
            from PIL import ImageCms

            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"),
                                             outputMode="RGB")
        except Exception:  # noqa: BLE001 - a broken profile falls back to the formula
            pass
    return im.convert("RGB")


def _grey16(im: Image.Image) -> np.ndarray:
    """A 16-bit, 32-bit integer or float ("F", taken as 0..1) image as (H, W) uint16."""
    arr = np.asarray(im)
    if im.mode == "F":
        arr = np.clip(arr, 0, 1) * 65535
    return np.clip(arr, 0, 65535).astype(np.uint16)


def to_rgb(im: Image.Image, icc: bytes | None = None) -> Image.Image:
    """Any PIL mode as 8-bit RGB (alpha dropped), with the pixels read_picture gives."""
    if im.mode in _SIXTEEN_BIT or im.mode == "F":
        grey = _grey16(im).astype(np.uint32)
        return Image.fromarray(((grey * 255 + 32767) // 65535).astype(np.uint8), "L").convert(
            "RGB")
    if im.mode == "CMYK":
        return _cmyk_to_rgb(im, icc)
    if im.mode in _ALPHA or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
    return im if im.mode == "RGB" else im.convert("RGB")


def load_rgb(path: Path, at_least: int | None = None) -> Image.Image:
    """Open an image upright (EXIF orientation applied) as 8-bit RGB, for training.

    ``at_least``: a JPEG may be decoded at 1/2, 1/4 or 1/8 scale as long as both its
    sides stay at least this long (libjpeg scales while decoding: much faster).
    """
    # Our own file object: PIL then never closes the image, whose loaded pixels (returned
    # without a copy when they are RGB already) stay usable after the file is closed.
    with open(path, "rb") as f:
        im = Image.open(f)
        if at_least:
            im.draft(None, (at_least, at_least))
        im.load()
        icc = im.info.get("icc_profile") or None
        if im.getexif().get(_ORIENTATION, 1) != 1:
            im = ImageOps.exif_transpose(im)
        return to_rgb(im, icc)


def read_picture(path: Path, channels: int = 3, data: bytes | None = None) -> Picture:
    """Decode ``path`` upright for a ``channels``-channel model; BadImage if it cannot be.

    ``data``: the file's bytes, already read (decoded from memory instead of the path).
    """
    try:
        if (len(data) if data is not None else path.stat().st_size) == 0:
            raise BadImage("empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data) if data is not None else path) as opened:
                width, height = opened.size
                if width * height > MAX_PIXELS:
                    raise BadImage(f"too large ({width}×{height}, over "
                                   f"{MAX_PIXELS // 1_000_000} megapixels)")
                opened.load()
                animation, notes = None, []
                if is_animated(opened):
                    try:
                        animation = read_animation(opened, channels, MAX_PIXELS)
                    except ValueError as exc:
                        raise BadImage(f"too large ({exc})") from None
                elif getattr(opened, "n_frames", 1) > 1 and opened.format == "TIFF":
                    notes.append(f"only the first of {opened.n_frames} TIFF pages was "
                                 "translated")
                im = ImageOps.exif_transpose(opened) or opened
                icc = opened.info.get("icc_profile") or None
                exif = _upright_exif(im)
                if im is opened:
                    im = opened.copy()
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage(f"too large (over {MAX_PIXELS // 1_000_000} megapixels)") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
        reason = why_unreadable(path) or f"cannot decode: {type(exc).__name__}: {exc}"
        raise BadImage(reason) from None
    picture = _to_picture(im, icc, exif, channels)
    picture.animation, picture.notes = animation, notes
    return picture


def _upright_exif(im: Image.Image) -> bytes | None:
    try:
        exif = im.getexif()
        if not exif:
            return None
        exif[_ORIENTATION] = 1  # the pixels are upright now
        return exif.tobytes()
    except Exception:  # noqa: BLE001 - unparsable EXIF is dropped, not fatal
        return None


def _to_picture(im: Image.Image, icc: bytes | None, exif: bytes | None,
                channels: int) -> Picture:
    alpha: np.ndarray | None = None
    bits = 8
    mode = im.mode
    space = _icc_space(icc) if icc else None
    if mode in _SIXTEEN_BIT or mode == "F":
        grey = _grey16(im)
        bits = 16
        pixels = grey[:, :, None]
        if channels == 3:
            pixels = np.repeat(pixels, 3, axis=2)
            icc = None  # a grey profile does not describe RGB output
        return Picture(pixels, None, bits, icc if space == "GRAY" else None, exif)
    if mode in _ALPHA or (mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA") if mode not in ("LA", "La") else im.convert("LA")
        alpha = np.asarray(im.getchannel("A")).copy()
        im = im.convert("RGB" if im.mode == "RGBA" else "L")
    if im.mode == "CMYK":
        im = _cmyk_to_rgb(im, icc)
        icc = None
    if channels == 3:
        if im.mode != "RGB":
            im = im.convert("RGB")
        if space not in ("RGB", None):
            icc = None
    else:
        if im.mode != "L":
            im = im.convert("L")
        if space not in ("GRAY", None):
            icc = None
    pixels = np.array(im)  # a writable copy: torch refuses read-only buffers
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return Picture(np.ascontiguousarray(pixels), alpha, bits, icc, exif)


def output_format(choice: str, source: Path) -> tuple[str, str]:
    """(PIL format, extension) for ``--format``; ``same`` keeps the input's where it can."""
    if choice == "same":
        key = _BY_EXTENSION.get(source.suffix.lower())
        if key is None:  # gif, ppm, tga…: no faithful way back; PNG loses nothing
            return _WRITERS["png"]
        return _WRITERS[key][0], source.suffix
    if choice not in _WRITERS:
        raise ValueError(f"unknown format {choice!r}")
    return _WRITERS[choice]


def make_image(
    result: np.ndarray, picture: Picture, pil_format: str
) -> tuple[Image.Image, list[str]]:
    """The output image (alpha put back, bit depth kept where possible) and any notes.

    ``result`` ([0, 1] floats) is scaled in place: a 48-megapixel image has no room
    for float temporaries.
    """
    notes: list[str] = []
    channels = result.shape[2]
    sixteen = picture.bits == 16 and channels == 1 and pil_format in ("PNG", "TIFF")
    scaled = np.multiply(result, 65535 if sixteen else 255, out=result)
    np.rint(scaled, out=scaled)
    if sixteen:
        out = Image.fromarray(scaled[:, :, 0].astype(np.uint16), "I;16")
    else:
        arr = scaled.astype(np.uint8)
        del scaled
        out = Image.fromarray(arr[:, :, 0], "L") if channels == 1 else Image.fromarray(arr, "RGB")
        if picture.bits == 16:
            notes.append("written as 8-bit (16-bit output needs a greyscale model and PNG/TIFF)")
    if picture.alpha is not None:
        if pil_format == "JPEG" or sixteen:
            notes.append(f"alpha dropped ({'JPEG' if pil_format == 'JPEG' else '16-bit'} "
                         "output has none)")
        else:
            alpha = picture.alpha
            if alpha.dtype != np.uint8:
                alpha = (alpha // 257).astype(np.uint8)
            out.putalpha(Image.fromarray(alpha, "L"))
    return out, notes


def save_kwargs(pil_format: str, quality: int, picture: Picture) -> dict[str, object]:
    """Encoder options: quality, and ICC/EXIF where the format keeps them."""
    kwargs: dict[str, object] = {}
    if pil_format == "JPEG":
        kwargs.update(quality=quality, subsampling=0 if quality >= 90 else 2, optimize=False)
    elif pil_format == "WEBP":
        kwargs.update(quality=quality, lossless=quality >= 100, method=4)
    elif pil_format == "PNG":
        kwargs.update(compress_level=6)
    elif pil_format == "TIFF":
        kwargs.update(compression="tiff_adobe_deflate")
    if pil_format in ("JPEG", "WEBP", "PNG", "TIFF"):
        if picture.icc:
            kwargs["icc_profile"] = picture.icc
        if picture.exif:
            kwargs["exif"] = picture.exif
    return kwargs


def write_image_atomic(image: Image.Image, path: Path, pil_format: str,
                       exclusive: bool = False, **kwargs: object) -> None:
    """Encode to a hidden temp file beside ``path``, fsync, then rename into place.

    ``exclusive``: never replace an existing ``path`` (FileExistsError instead).
    """
    from cyclestudio.atomic import atomic_write

    with atomic_write(path, exclusive=exclusive) as f:
        image.save(f, format=pil_format, **kwargs)
