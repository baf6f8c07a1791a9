"""Training images: decoded once, prepared as the paper does, the same on every resume."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image

from cyclestudio.core.config import DataConfig
from cyclestudio.core.data import load_pixels, prepare, to_tensor


def photo(width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([128 + 100 * np.sin(xx / 40), 128 + 100 * np.cos(yy / 30),
                     128 + 80 * np.sin((xx + yy) / 70)], 2).astype(np.uint8)


def config(preprocess: str, **kw) -> DataConfig:
    return DataConfig(**{"a": ("a",), "b": ("b",), "size": 32, "load_size": 36,
                         "preprocess": preprocess, **kw})


@pytest.mark.parametrize("preprocess,expected", [
    ("resize_and_crop", (32, 32)), ("crop", (32, 32)), ("scale_width", (32, 32)),
    ("scale_width_and_crop", (32, 32)), ("none", (32, 56)),
])
def test_each_preprocessing_gives_the_papers_shapes(tmp_path, preprocess, expected):
    Image.fromarray(photo(57, 33)).save(tmp_path / "a.png")
    c = config(preprocess)
    x = load_pixels(tmp_path / "a.png", c)
    assert x.dtype == torch.uint8 and x.shape == (3, 33, 57)
    out = to_tensor(prepare(x, c, random.Random("0/0/0/A"), multiple=4))
    # scale_width: width 32, height 33·32/57 ≈ 19, raised to the crop size 32;
    # none: 33×57 rounded to multiples of 4
    assert out.shape == (3, *expected) and out.dtype == torch.float32
    assert -1 <= out.min() and out.max() <= 1


def test_crops_and_flips_are_a_pure_function_of_the_seed_and_position(tmp_path):
    Image.fromarray(photo(80, 60)).save(tmp_path / "a.png")
    c = config("resize_and_crop", load_size=64)
    x = load_pixels(tmp_path / "a.png", c)
    first = [prepare(x, c, random.Random(f"3/1/{pos}/A")) for pos in range(8)]
    again = [prepare(x, c, random.Random(f"3/1/{pos}/A")) for pos in range(8)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert len({bytes(t.contiguous().numpy()) for t in first}) > 1  # positions differ
    centre = prepare(x, c, None)  # the fixed samples: no randomness at all
    assert torch.equal(centre, prepare(x, c, None))


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_that_still_covers_the_crop(tmp_path):
    Image.fromarray(photo(1200, 900)).save(tmp_path / "big.jpg", quality=95)
    c = DataConfig(a=("a",), b=("b",), size=128, load_size=143)
    reduced = load_pixels(tmp_path / "big.jpg", c)
    assert reduced.shape == (3, 225, 300)  # 1/4 scale: still over 143 on both sides
    full = load_pixels(tmp_path / "big.jpg", config("crop"))  # crop keeps every pixel
    assert full.shape == (3, 900, 1200)
    a = to_tensor(prepare(reduced, c, None)).numpy()
    b = to_tensor(prepare(full, c, None)).numpy()
    assert 10 * np.log10(4 / np.mean((a - b) ** 2)) > 35  # the same picture


def test_a_greyscale_model_gets_one_channel(tmp_path):
    Image.fromarray(photo(40, 40)).save(tmp_path / "a.png")
    c = config("resize_and_crop", channels=1)
    x = load_pixels(tmp_path / "a.png", c)
    assert x.shape == (1, 40, 40)
    expected = np.asarray(Image.open(tmp_path / "a.png").convert("L"))
    assert np.array_equal(x[0].numpy(), expected)  # as translation converts it
