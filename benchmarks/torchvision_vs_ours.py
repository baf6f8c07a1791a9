"""Where torchvision could replace our own image code, and whether it would be faster.

    python benchmarks/torchvision_vs_ours.py [--repeats 20]

Each job is timed both ways in one process, alternating, median of the repeats:

- decoding a whole image: ``core.imagecodec.load_rgb`` (PIL) against
  ``torchvision.io.decode_image`` (libjpeg-turbo / libpng), on photo-like JPEGs and PNGs;
- what a DataLoader worker does per training image (decode, resize to 286, 256 crop,
  flip, to a [-1, 1] tensor): ``core.data.load_pixels`` + ``prepare`` + ``to_tensor``
  against ``torchvision.io.decode_image`` + ``torchvision.transforms.v2.functional``,
  same crop and flip;
- a sample grid (3 rows × 6 columns of 256² tiles, encoded as PNG):
  ``core.samples.grid_image`` against ``torchvision.utils.make_grid``.

DataLoader workers run torch with one thread, so torch is pinned to one thread here too,
and the times are this process's CPU time: on a machine shared with other jobs, wall
time mostly measures them.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus noise: compresses like a photograph, not like flat colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    smooth = np.stack([128 + 100 * np.sin(xx / 50), 128 + 100 * np.cos(yy / 37),
                       128 + 80 * np.sin((xx + yy) / 90)], 2)
    return np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median CPU seconds of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def pair(name: str, ours: Callable[[], object], theirs: Callable[[], object],
         repeats: int) -> None:
    """Time both, alternating rounds so machine load hits them alike."""
    a, b = [], []
    for _ in range(3):
        a.append(timed(ours, max(1, repeats // 3)))
        b.append(timed(theirs, max(1, repeats // 3)))
    t_ours, t_theirs = statistics.median(a), statistics.median(b)
    print(f"| {name} | {t_ours * 1e3:.1f} ms | {t_theirs * 1e3:.1f} ms | "
          f"{t_ours / t_theirs:.2f}× |")


def training_images(folder: Path, repeats: int) -> None:
    """Decoding, and decoding plus the augmentation a DataLoader worker does per image."""
    import torchvision.transforms.v2.functional as TF
    from torchvision.io import ImageReadMode, decode_image, read_file

    from cyclestudio.core.config import DataConfig
    from cyclestudio.core.data import load_pixels, prepare, to_tensor
    from cyclestudio.core.imagecodec import load_rgb

    config = DataConfig(a=("a",), b=("b",), size=256, load_size=286)

    def tv_decode(path: Path) -> torch.Tensor:
        return decode_image(read_file(str(path)), ImageReadMode.RGB,
                            apply_exif_orientation=True)

    def ours(path: Path) -> torch.Tensor:
        return to_tensor(prepare(load_pixels(path, config), config, random.Random("7/0/3/A")))

    def theirs(path: Path) -> torch.Tensor:
        rng = random.Random("7/0/3/A")  # the same crop position and flip as ours draws
        x = TF.resize(tv_decode(path), [286, 286],
                      interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
        left, top = rng.randint(0, 30), rng.randint(0, 30)
        x = TF.crop(x, top, left, 256, 256)
        if rng.random() < 0.5:
            x = TF.horizontal_flip(x)
        return x.float() / 127.5 - 1

    for (w, h), ext in (((256, 256), "jpg"), ((1024, 768), "jpg"), ((4000, 3000), "jpg"),
                        ((1024, 768), "png")):
        path = folder / f"photo_{w}x{h}.{ext}"
        Image.fromarray(photo(w, h)).save(path, quality=90)
        n = repeats if w < 4000 else max(3, repeats // 4)
        pair(f"decode {w}×{h} {ext.upper()} (8-bit RGB)", lambda p=path: load_rgb(p),
             lambda p=path: tv_decode(p), n)
        diff = (ours(path) - theirs(path)).abs().max().item()
        pair(f"decode + resize to 286², crop 256, flip, to tensor (max diff {diff:.3f})",
             lambda p=path: ours(p), lambda p=path: theirs(p), n)


def grids(repeats: int) -> None:
    from torchvision.utils import make_grid

    from cyclestudio.core.samples import GAP, grid_image

    grid = torch.rand(3, 6, 3, 256, 256) * 2 - 1

    def ours() -> bytes:
        out = io.BytesIO()
        grid_image(grid).save(out, format="PNG")
        return out.getvalue()

    def theirs() -> bytes:
        n, cols = grid.shape[:2]
        sheet = make_grid(grid.flatten(0, 1), nrow=cols, padding=GAP, pad_value=24 / 127.5 - 1)
        sheet = sheet[:, GAP:-GAP, GAP:-GAP]  # make_grid also pads the outer edge
        arr = ((sheet.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        out = io.BytesIO()
        Image.fromarray(arr).save(out, format="PNG")
        return out.getvalue()

    same = np.array_equal(np.asarray(Image.open(io.BytesIO(ours()))),
                          np.asarray(Image.open(io.BytesIO(theirs()))))
    print(f"<!-- sample grid: identical pixels: {same} -->")
    pair("sample grid 3×6 of 256², PNG-encoded", ours, theirs, max(3, repeats // 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| job | ours | torchvision | ours ÷ torchvision |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        training_images(Path(tmp), args.repeats)
    grids(args.repeats)


if __name__ == "__main__":
    main()
