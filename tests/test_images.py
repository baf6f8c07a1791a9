"""Image files read the same way for training and for translation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cyclestudio.core.imagecodec import load_rgb, read_picture


@pytest.mark.parametrize("peak", [200, 4000, 65535])
def test_training_and_translation_see_a_16_bit_png_alike(tmp_path, peak):
    # A dark 16-bit scan (all values far below 65535) must stay dark for both: 16-bit
    # means 0..65535 whatever the brightest pixel happens to be.
    grey = np.linspace(0, peak, 48 * 40).reshape(40, 48).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "scan.png")
    picture = read_picture(tmp_path / "scan.png", 3)
    assert picture.bits == 16
    for_translation = picture.pixels.astype(np.float64) / 65535
    for_training = np.asarray(load_rgb(tmp_path / "scan.png"), dtype=np.float64) / 255
    assert for_training.shape == for_translation.shape == (40, 48, 3)
    assert np.abs(for_training - for_translation).max() <= 0.5 / 255 + 1e-9  # 8-bit rounding


def _noise(h: int, w: int, c: int = 3) -> np.ndarray:
    rng = np.random.default_rng(h * w + c)
    return (rng.random((h, w, c) if c > 1 else (h, w)) * 255).astype(np.uint8)


def _rotated(path):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_noise(20, 30)).save(path, exif=exif.tobytes())


MAKERS = {
    "grey.png": lambda p: Image.fromarray(_noise(20, 30, 1)).save(p),
    "grey_alpha.png": lambda p: Image.fromarray(_noise(20, 30, 2), "LA").save(p),
    "rgba.png": lambda p: Image.fromarray(_noise(20, 30, 4), "RGBA").save(p),
    "palette_t.png": lambda p: Image.fromarray(_noise(20, 30)).convert("P").save(
        p, transparency=0),
    "print.tif": lambda p: Image.fromarray(_noise(20, 30)).convert("CMYK").save(p),
    "deep.tif": lambda p: Image.fromarray(
        _noise(20, 30, 1).astype(np.uint16) * 97).save(p),
    "float.tif": lambda p: Image.fromarray(_noise(20, 30, 1).astype(np.float32) / 300).save(p),
    "phone.png": _rotated,
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_training_and_translation_decode_every_mode_alike(tmp_path, name):
    path = tmp_path / name
    MAKERS[name](path)
    picture = read_picture(path, 3)
    peak = 255 if picture.bits == 8 else 65535
    for_translation = np.rint(picture.pixels.astype(np.float64) / peak * 255)
    for_training = np.asarray(load_rgb(path), dtype=np.float64)
    assert for_training.shape == for_translation.shape
    assert np.abs(for_training - for_translation).max() <= 1  # at most 8-bit rounding
