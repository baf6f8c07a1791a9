"""What do the two domains' colours alone say about a colour change?

    python benchmarks/colour_oracle.py [--out DIR | --task DIR] [--pixels 2000,4000,8000]
                                       [--neighbours 24] [--seed 0]

Without pairs, what the images say about a colour change is how often each colour occurs
in each domain. Many maps turn A's colours into B's; cyclestudio's generators start near
the identity and change as little as they must, so the one they head for is the map
that moves colours the least: the optimal transport between the two colour clouds
(squared distance in RGB). This script computes that map from the training images
alone (exact transport between ``N`` random pixels of each domain) and scores it
against the held-out truth, with the same PSNR as `cyclestudio train --val-truth`
reports, in two forms:

- raw: a held-out pixel goes where its ``--neighbours`` nearest sampled pixels go,
  weighted by nearness;
- smoothed: the pairs fitted with a quadratic function of the colour, which is what
  `--colour-start` (core/colour_start.py) starts the generators at.

Beside them: the untranslated input, and each channel's histogram matched alone (what
a per-channel tone curve fitted without pairs gives). Compare a trained model's
validation figures with these to see what training added to the colours.

``--out DIR`` generates (once) and reads benchmarks/quality.py's colour task under
DIR/tasks/colour; ``--task DIR`` reads any folder with A, B, testA, testA_truth, testB,
testB_truth (for example the demo's data: ``cyclestudio demo`` writes one).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import make_task  # noqa: E402 - benchmarks/ is on sys.path when run

from cyclestudio.core.colour_start import fit_quadratic, quadratic_terms, transport  # noqa: E402

ROLES = ("A", "B", "testA", "testA_truth", "testB", "testB_truth")


def load(folder: Path) -> list[np.ndarray]:
    """The folder's PNG/JPEG images as float arrays in [0, 1], in name order."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise SystemExit(f"no images in {folder}")
    return [np.asarray(Image.open(f).convert("RGB"), dtype=np.float64) / 255 for f in files]


def pixels(images: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([i.reshape(-1, 3) for i in images])


def psnr(image: np.ndarray, truth: np.ndarray) -> float:
    return 10 * math.log10(1 / float(np.mean((image - truth) ** 2)))


def score(translate, inputs: list[np.ndarray], truths: list[np.ndarray]) -> float:
    """Mean PSNR of the translations, rounded to 8 bits as a saved image would be."""
    return float(np.mean([psnr(np.round(translate(i).clip(0, 1) * 255) / 255, t)
                          for i, t in zip(inputs, truths, strict=True)]))


def extend(samples: np.ndarray, targets: np.ndarray, k: int):
    """The map ``samples -> targets`` for any colour: the inverse-distance-weighted mean
    of its ``k`` nearest samples' targets."""
    s, t = torch.from_numpy(samples), torch.from_numpy(targets)

    def translate(image: np.ndarray) -> np.ndarray:
        q = torch.from_numpy(image.reshape(-1, 3))
        out = torch.empty_like(q)
        for start in range(0, len(q), 4096):
            d, i = torch.cdist(q[start:start + 4096], s).topk(k, largest=False)
            w = 1 / (d + 1e-3)
            out[start:start + 4096] = (t[i] * w[..., None]).sum(1) / w.sum(1, keepdim=True)
        return out.numpy().reshape(image.shape)
    return translate


def quadratic(samples: np.ndarray, targets: np.ndarray):
    """The least-squares quadratic function of the colour through ``samples -> targets``."""
    coefficients = fit_quadratic(samples, targets)

    def translate(image: np.ndarray) -> np.ndarray:
        return (quadratic_terms(image.reshape(-1, 3)) @ coefficients).reshape(image.shape)
    return translate


def histogram_match(src: np.ndarray, dst: np.ndarray):
    """Each channel through the monotone curve that gives it ``dst``'s histogram."""
    q = np.linspace(0, 1, 1001)
    curves = [(np.quantile(src[:, c], q), np.quantile(dst[:, c], q)) for c in range(3)]

    def translate(image: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(image[..., c], *curves[c]) for c in range(3)], -1)
    return translate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=Path("quality-runs"),
                       help="benchmarks/quality.py's folder (its colour task is made if missing)")
    where.add_argument("--task", type=Path, help="a folder with " + ", ".join(ROLES))
    parser.add_argument("--pixels", default="2000,4000,8000",
                        help="pixels sampled from each domain for the transport (8000 takes "
                             "about 3 minutes and 1 GB)")
    parser.add_argument("--neighbours", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = args.task or args.out / "tasks" / "colour"
    if args.task is None:
        make_task("colour", folder)
    missing = [r for r in ROLES if not (folder / r).is_dir()]
    if missing:
        raise SystemExit(f"{folder} has no {', '.join(missing)} folder: "
                         f"it needs {', '.join(ROLES)}")
    images = {r: load(folder / r) for r in ROLES}
    for test in ("testA", "testB"):
        if len(images[test]) != len(images[test + "_truth"]):
            raise SystemExit(f"{folder}: {test} and {test}_truth hold different numbers of "
                             "images; each held-out image needs its truth, in name order")
    a, b = pixels(images["A"]), pixels(images["B"])
    directions = (("A→B", a, b, "testA", "testA_truth"), ("B→A", b, a, "testB", "testB_truth"))

    print(f"{folder}: {len(images['A'])} / {len(images['B'])} training images, "
          f"{len(images['testA'])} / {len(images['testB'])} held out; PSNR A→B / B→A in dB")
    print("| map | A→B | B→A |")
    print("| --- | --- | --- |")

    def row(name: str, maps) -> None:
        figures = [score(m, images[test], images[truth])
                   for m, (_, _, _, test, truth) in zip(maps, directions, strict=True)]
        print(f"| {name} | {figures[0]:.2f} | {figures[1]:.2f} |", flush=True)

    row("untranslated input", [lambda x: x, lambda x: x])
    row("each channel's histogram matched", [histogram_match(s, d) for _, s, d, _, _ in directions])
    rng = np.random.default_rng(args.seed)
    for n in (int(v) for v in args.pixels.split(",")):
        xa = a[rng.choice(len(a), n, replace=False)]
        xb = b[rng.choice(len(b), n, replace=False)]
        started = time.perf_counter()
        forward, backward, _ = transport(xa, xb)
        seconds = time.perf_counter() - started
        row(f"least-moving map (optimal transport), {n:,} pixels a side ({seconds:.0f} s)",
            [extend(xa, forward, args.neighbours), extend(xb, backward, args.neighbours)])
        row(f"the same pairs smoothed into a quadratic (what --colour-start fits), {n:,}",
            [quadratic(xa, forward), quadratic(xb, backward)])


if __name__ == "__main__":
    main()
