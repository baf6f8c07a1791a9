"""`cyclestudio eval`: score translations against paired ground truth (PSNR and SSIM).

The same figures for the untranslated inputs are printed beside them: a model is
only doing something useful if it beats "leave the image as it is".
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from cyclestudio.errors import UserError

HELP = "score a model's translations against paired ground truth (PSNR, SSIM)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="a .csmodel file or a run folder")
    p.add_argument("--a", required=True, metavar="DIR", help="the images to translate")
    p.add_argument("--truth", required=True, metavar="DIR",
                   help="their true translations, with the same relative names")
    p.add_argument("--direction", choices=("a2b", "b2a"), default="a2b")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=("auto", "fp32", "bf16", "fp16"),
                   help="fp32 by default, so the scores do not depend on the hardware")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def pair_files(inputs: Path, truth: Path) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(input, truth) pairs matched by relative path without extension; unmatched inputs."""
    from cyclestudio.core.imagescan import list_images

    for folder, flag in ((inputs, "--a"), (truth, "--truth")):
        if not folder.is_dir():
            raise UserError(f"{flag} {folder} is not a folder", "give a folder of images")
    truths = {f.relative_to(truth).with_suffix(""): f for f in list_images(truth)}
    pairs, missing = [], []
    for f in list_images(inputs):
        match = truths.get(f.relative_to(inputs).with_suffix(""))
        (pairs.append((f, match)) if match else missing.append(f))
    if not pairs:
        raise UserError(f"no image in {inputs} has a counterpart in {truth}",
                        "ground truth files need the same names (any extension)")
    return pairs, missing


def evaluate(translator: Any, pairs: list[tuple[Path, Path]], direction: str) -> dict[str, Any]:
    """Mean PSNR/SSIM of translations and of untranslated inputs against the truth."""
    import numpy as np

    from cyclestudio.core.imagecodec import BadImage, read_picture
    from cyclestudio.core.metrics import psnr, ssim

    scores: dict[str, list[float]] = {k: [] for k in ("psnr", "ssim", "psnr_input", "ssim_input")}
    failed: list[dict[str, str]] = []
    for source, truth_file in pairs:
        try:
            picture = read_picture(source, translator.channels)
            truth = read_picture(truth_file, translator.channels)
        except BadImage as bad:
            failed.append({"path": str(source), "reason": bad.reason})
            continue
        if truth.pixels.shape != picture.pixels.shape:
            failed.append({"path": str(source), "reason": "truth has another size"})
            continue
        peak = 255.0 if picture.bits == 8 else 65535.0
        x = picture.pixels.astype(np.float64) / peak
        t = truth.pixels.astype(np.float64) / (255.0 if truth.bits == 8 else 65535.0)
        y = translator.translate(picture.pixels, direction).astype(np.float64)
        # Score what would be written: 8-bit output rounds.
        y = np.rint(y * peak) / peak
        scores["psnr"].append(psnr(y, t))
        scores["ssim"].append(ssim(y, t))
        scores["psnr_input"].append(psnr(x, t))
        scores["ssim_input"].append(ssim(x, t))

    def mean(values: list[float]) -> float | None:
        finite = [v for v in values if math.isfinite(v)]
        return round(sum(finite) / len(finite), 4) if finite else None

    return {"images": len(scores["psnr"]), "failed": failed,
            **{k: mean(v) for k, v in scores.items()}}


def _score(value: float | None, places: int) -> str:
    """A mean score for the table; identical images have no finite PSNR."""
    return "n/a" if value is None else f"{value:.{places}f}"


def run(args: argparse.Namespace) -> int:
    from cyclestudio.core.modelfile import load_translator

    pairs, missing = pair_files(Path(args.a), Path(args.truth))
    translator = load_translator(Path(args.model), args.device, precision=args.precision)
    result = evaluate(translator, pairs, args.direction)
    source, target = translator.model.domain_names(args.direction)
    result.update(model=str(args.model), direction=args.direction,
                  unmatched=[str(m) for m in missing])
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.model}: {source} → {target}, {result['images']} images")
        if result["images"]:
            print(f"{'':14}{'PSNR (dB)':>10}{'SSIM':>8}")
            print(f"{'translated':14}{_score(result['psnr'], 2):>10}"
                  f"{_score(result['ssim'], 4):>8}")
            print(f"{'untranslated':14}{_score(result['psnr_input'], 2):>10}"
                  f"{_score(result['ssim_input'], 4):>8}")
        else:
            print(f"no image could be scored: all {len(result['failed'])} pairs failed")
        for f in result["failed"]:
            print(f"  skipped {f['path']}: {f['reason']}")
        if missing:
            print(f"  {len(missing)} inputs had no ground truth and were left out")
    return 1 if result["failed"] else 0
