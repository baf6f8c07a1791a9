"""The demo project: two procedurally generated domains whose true mapping is known.

Domain A ("day") is scenes of soft-edged circles, boxes and triangles in random colours
over a sky-like gradient. Domain B ("dusk") is the same kind of scene passed through
:func:`dusk`, a fixed per-channel tone curve (darker, warmer highlights, blue shadows)
that is invertible, so B→A is known too. A and B training scenes are drawn from
different seeds (unpaired, as CycleGAN expects); the held-out test scenes come with
their true translations, so `cyclestudio eval` can score a model against the truth.

Everything is made on the user's machine from fixed seeds: no downloads, identical
bytes on every run. Neither Qt nor torch is needed here.
"""

from __future__ import annotations

import importlib.resources
import math
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

DEMO_MODEL_NAME = "demo.csmodel"
SIZE = 64
TRAIN_IMAGES = 200
TEST_IMAGES = 40
A_NAME, B_NAME = "day", "dusk"

# dusk(x) = GAIN * x ** GAMMA + LIFT per channel (R, G, B): monotone, so invertible.
GAMMA = np.array([1.4, 1.9, 1.1], dtype=np.float64)
GAIN = np.array([0.85, 0.6, 0.55], dtype=np.float64)
LIFT = np.array([0.1, 0.05, 0.3], dtype=np.float64)


def dusk(image: np.ndarray) -> np.ndarray:
    """The true A→B mapping on [0, 1] floats (H, W, 3)."""
    return GAIN * np.power(np.clip(image, 0, 1), GAMMA) + LIFT


def day(image: np.ndarray) -> np.ndarray:
    """The true B→A mapping, the inverse of :func:`dusk`."""
    return np.power(np.clip((image - LIFT) / GAIN, 0, 1), 1 / GAMMA)


def scene(seed: int, size: int = SIZE) -> np.ndarray:
    """One deterministic day scene as [0, 1] floats (size, size, 3)."""
    rng = random.Random(seed)
    big = size * 4  # drawn large and reduced: smooth, anti-aliased edges
    top = np.array([rng.uniform(0.45, 0.75), rng.uniform(0.6, 0.85), rng.uniform(0.8, 1.0)])
    bottom = np.array([rng.uniform(0.7, 1.0), rng.uniform(0.7, 0.95), rng.uniform(0.5, 0.8)])
    t = np.linspace(0, 1, big)[:, None, None]
    sky = (top * (1 - t) + bottom * t) * np.ones((1, big, 1))
    im = Image.fromarray((sky * 255).round().astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(im)
    for _ in range(rng.randint(2, 5)):
        colour = tuple(rng.randint(20, 255) for _ in range(3))
        cx, cy = rng.uniform(0.1, 0.9) * big, rng.uniform(0.1, 0.9) * big
        r = rng.uniform(0.08, 0.25) * big
        kind = rng.choice(("circle", "box", "triangle"))
        if kind == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
        elif kind == "box":
            draw.rectangle((cx - r, cy - r * rng.uniform(0.4, 1.0), cx + r, cy + r), fill=colour)
        else:
            a = rng.uniform(0, 2 * math.pi)
            points = [(cx + r * math.cos(a + k * 2 * math.pi / 3),
                       cy + r * math.sin(a + k * 2 * math.pi / 3)) for k in range(3)]
            draw.polygon(points, fill=colour)
    im = im.filter(ImageFilter.GaussianBlur(2)).resize((size, size), Image.Resampling.BOX)
    return np.asarray(im, dtype=np.float64) / 255.0


def _save(image: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8), "RGB").save(path)


def make_demo_data(folder: Path, train: int = TRAIN_IMAGES, test: int = TEST_IMAGES,
                   size: int = SIZE) -> dict[str, Path]:
    """Write the demo images under ``folder``; return the folders by role.

    ``A``, ``B``: unpaired training images. ``testA`` with ``testA_truth`` (their true
    dusk versions) and ``testB`` with ``testB_truth`` (their true day versions).
    """
    folder = Path(folder)
    roles = {name: folder / name for name in ("A", "B", "testA", "testA_truth", "testB",
                                              "testB_truth")}
    for i in range(train):
        _save(scene(1_000_000 + i, size), roles["A"] / f"day_{i:04d}.png")
        _save(dusk(scene(2_000_000 + i, size)), roles["B"] / f"dusk_{i:04d}.png")
    for i in range(test):
        a = scene(3_000_000 + i, size)
        _save(a, roles["testA"] / f"{i:04d}.png")
        _save(dusk(a), roles["testA_truth"] / f"{i:04d}.png")
        b = dusk(scene(4_000_000 + i, size))
        _save(b, roles["testB"] / f"{i:04d}.png")
        _save(day(b), roles["testB_truth"] / f"{i:04d}.png")
    return roles


README = """\
cyclestudio demo project
========================

data/A      {train} "day" scenes: random shapes over a sky gradient ({size}x{size} px)
data/B      {train} "dusk" scenes: other random scenes through a fixed tone curve
data/testA  held-out day scenes; data/testA_truth holds their true dusk versions
data/testB  held-out dusk scenes; data/testB_truth holds their true day versions

The true mapping is a per-channel curve (see cyclestudio/core/demo.py), so a trained
model can be scored against it:

  cyclestudio train --a data/A --b data/B --out runs/demo --size 64 \\
      --load-size 72 --epochs 4 --iterations 800 --device cpu \\
      --val-a data/testA --val-truth data/testA_truth \\
      --val-b data/testB --val-b-truth data/testB_truth
  cyclestudio translate runs/demo data/testA --out translated
  cyclestudio eval runs/demo --a data/testA --truth data/testA_truth
"""


def create_demo_project(folder: Path, train: int = TRAIN_IMAGES, test: int = TEST_IMAGES) -> Path:
    """A ready project in ``folder``: project.json, the demo data, and a README."""
    from cyclestudio.project import Project

    folder = Path(folder)
    project = Project.create(folder, "cyclestudio demo", A_NAME, B_NAME)
    roles = make_demo_data(folder / "data", train, test)
    project.a.paths = [project.relative(roles["A"])]
    project.b.paths = [project.relative(roles["B"])]
    # The held-out scenes with their truth: the app's runs report PSNR against it.
    project.validation = {"val_a": project.relative(roles["testA"]),
                          "val_truth": project.relative(roles["testA_truth"]),
                          "val_b": project.relative(roles["testB"]),
                          "val_b_truth": project.relative(roles["testB_truth"])}
    project.save()
    (folder / "README.txt").write_text(README.format(train=train, size=SIZE), encoding="utf-8")
    return folder


def demo_model_path() -> Path | None:
    """The shipped pre-trained demo model, or None if this install lacks it."""
    try:
        resource = importlib.resources.files("cyclestudio.resources") / DEMO_MODEL_NAME
    except ModuleNotFoundError:
        return None
    path = Path(str(resource))
    return path if path.is_file() else None
