"""Is the run learning? Held-out images translated every so often, and figures about them.

Every figure is cheap (a few batched forward passes over a handful of images) and needs
no downloaded weights:

- ``cycle``: how far A→B→A (and B→A→B) is from the original, mean absolute error on
  [0, 1]; the cycle-consistency the objective asks for, measured on unseen images.
- ``identity``: how much a generator changes an image already in its target domain.
- ``change``: how much a generator changes its inputs; near 0 for long means it is not
  translating at all.
- ``swd``: a sliced Wasserstein distance between the translations and real images of
  the target domain, on pixel colours and on small high-passed patches (texture,
  sharpness); ``swd_input`` is the same distance for the untranslated inputs, the
  number a useful translator beats.
- ``corr``: the correlation of luminance between input and translation; strongly
  negative is the colour-inversion failure.
- ``psnr``/``ssim`` against paired truth where the user has it (``--val-truth``),
  beside ``psnr_input``/``ssim_input`` for the untranslated inputs.

``score`` ranks checkpoints (higher is better): the mean PSNR against the truth where
there is truth, else minus the mean of the two directions' ``swd``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cyclestudio.core.config import DataConfig
from cyclestudio.core.metrics import psnr, ssim
from cyclestudio.errors import UserError

PROJECTIONS = 64  # directions for the sliced Wasserstein distance
PATCH = 5  # side of the patches the texture distance compares
MAX_POINTS = 4096  # pixels or patches sampled per set


def hold_out(paths: Sequence[Path], count: int) -> tuple[list[Path], list[Path]]:
    """Split a domain into (training, held-out): ``count`` images spread over the list.

    Only a domain of at least ten times ``count`` images gives some up; a smaller one
    trains on everything and is validated on ``count`` of its own images (the second
    list then overlaps the first).
    """
    paths = list(paths)
    if count <= 0 or not paths:
        return paths, []
    step = max(1, len(paths) // count)
    chosen = [paths[i] for i in range(step // 2, len(paths), step)][:count]
    if len(paths) < 10 * count:
        return paths, chosen
    held = set(chosen)
    return [p for p in paths if p not in held], chosen


def paired_truth(inputs: Sequence[Path], truth_dir: Path, flag: str) -> list[Path]:
    """The truth file for each input: the same relative name (any extension) in ``truth_dir``."""
    from cyclestudio.core.imagescan import list_images

    if not truth_dir.is_dir():
        raise UserError(f"{flag} {truth_dir} is not a folder", "give a folder of images")
    by_stem: dict[str, Path] = {}
    for f in list_images(truth_dir):
        by_stem.setdefault(f.stem, f)
    missing = [p for p in inputs if p.stem not in by_stem]
    if missing:
        raise UserError(f"{flag} {truth_dir} has no truth for {missing[0].name}"
                        f"{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}",
                        "each held-out image needs its true translation under the same name")
    return [by_stem[p.stem] for p in inputs]


def _sliced_wasserstein(x: Tensor, y: Tensor, generator: torch.Generator) -> float:
    """Mean 1-D Wasserstein distance between the two point sets along random directions."""
    dims = x.shape[1]
    directions = torch.randn(dims, PROJECTIONS, generator=generator)
    directions /= directions.norm(dim=0, keepdim=True)
    px, _ = torch.sort(x @ directions, dim=0)
    py, _ = torch.sort(y @ directions, dim=0)
    n = min(len(px), len(py))
    quantiles = torch.linspace(0, 1, n)

    def at(p: Tensor) -> Tensor:
        index = (quantiles * (len(p) - 1)).round().long()
        return p[index]

    return float((at(px) - at(py)).abs().mean())


def _points(images: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(pixel colours, high-passed patches) of a (N, C, H, W) batch, subsampled."""
    x = images.float()
    colours = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    # High-pass: subtract a local mean, so patches carry texture and sharpness, not colour.
    local = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    patches = torch.nn.functional.unfold(x - local, PATCH).transpose(1, 2)
    patches = patches.reshape(-1, patches.shape[-1])

    def sample(points: Tensor) -> Tensor:
        if len(points) <= MAX_POINTS:
            return points
        return points[torch.randperm(len(points), generator=generator)[:MAX_POINTS]]

    return sample(colours), sample(patches)


def domain_distance(images: Tensor, target: Tensor, seed: int = 0) -> float:
    """Sliced Wasserstein distance between two image sets: colours plus patch texture."""
    g = torch.Generator().manual_seed(seed)
    colours_x, patches_x = _points(images, g)
    colours_y, patches_y = _points(target, g)
    g = torch.Generator().manual_seed(seed + 1)
    return (_sliced_wasserstein(colours_x, colours_y, g)
            + _sliced_wasserstein(patches_x, patches_y, g))


def _correlation(a: Tensor, b: Tensor) -> float:
    """Mean per-image Pearson correlation of luminance."""
    la, lb = a.float().mean(1).flatten(1), b.float().mean(1).flatten(1)
    la, lb = la - la.mean(1, keepdim=True), lb - lb.mean(1, keepdim=True)
    denom = (la.norm(dim=1) * lb.norm(dim=1)).clamp_min(1e-8)
    return float(((la * lb).sum(1) / denom).mean())


def _to_unit(x: Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] to a list-like (N, H, W, C) array in [0, 1]."""
    return ((x.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()


@dataclass
class Side:
    """One direction's held-out images: inputs, real target-domain images, optional truth."""

    name: str  # "A": A→B with G_A
    inputs: Tensor
    target: Tensor
    truth: Tensor | None
    input_distance: float = math.nan


class Validator:
    """Held-out images of both domains, prepared once, and the figures about a model."""

    def __init__(self, a: Sequence[Path], b: Sequence[Path], config: DataConfig, multiple: int,
                 truth_a: Sequence[Path] | None = None,
                 truth_b: Sequence[Path] | None = None) -> None:
        from cyclestudio.core.data import fixed_images

        if not a or not b:
            raise ValueError("validation needs images of both domains")
        load = fixed_images  # deterministic preprocessing: centre crop, no flip
        images_a, images_b = load(a, config, multiple), load(b, config, multiple)
        self.sides = (
            Side("A", images_a, images_b, load(truth_a, config, multiple) if truth_a else None),
            Side("B", images_b, images_a, load(truth_b, config, multiple) if truth_b else None),
        )
        for side in self.sides:
            side.input_distance = domain_distance(side.inputs, side.target)
            if side.truth is not None and side.truth.shape != side.inputs.shape:
                raise UserError("the truth images do not have the held-out images' sizes",
                                "give truth of the same size as each held-out image")
        self.count = (len(images_a), len(images_b))

    @torch.no_grad()
    def run(self, model: Any) -> dict[str, float]:
        """Translate the held-out images with ``model`` (a CycleGAN) and measure."""
        G_A, G_B = model.generators["G_A"], model.generators["G_B"]
        nets = {"A": (G_A, G_B), "B": (G_B, G_A)}
        was_training = G_A.training
        G_A.eval()
        G_B.eval()
        figures: dict[str, float] = {}
        try:
            for side in self.sides:
                forward, back = nets[side.name]
                x = side.inputs.to(model.device)
                fake = forward(x).float()
                rec = back(fake).float()
                same = forward(side.target.to(model.device)).float()
                n = side.name
                figures[f"cycle_{n}"] = float((rec - x).abs().mean()) / 2
                figures[f"identity_{n}"] = float((same - side.target.to(same)).abs().mean()) / 2
                figures[f"change_{n}"] = float((fake - x).abs().mean()) / 2
                figures[f"swd_{n}"] = domain_distance(fake.cpu(), side.target)
                figures[f"swd_{n}_input"] = side.input_distance
                figures[f"corr_{n}"] = _correlation(x.cpu(), fake.cpu())
                if side.truth is not None:
                    outs, truth, ins = _to_unit(fake), _to_unit(side.truth), _to_unit(side.inputs)
                    figures[f"psnr_{n}"] = float(np.mean([psnr(o, t) for o, t in zip(
                        outs, truth, strict=True)]))
                    figures[f"ssim_{n}"] = float(np.mean([ssim(o, t) for o, t in zip(
                        outs, truth, strict=True)]))
                    figures[f"psnr_{n}_input"] = float(np.mean([psnr(i, t) for i, t in zip(
                        ins, truth, strict=True)]))
                    figures[f"ssim_{n}_input"] = float(np.mean([ssim(i, t) for i, t in zip(
                        ins, truth, strict=True)]))
        finally:
            G_A.train(was_training)
            G_B.train(was_training)
        figures["score"] = score(figures)
        return {k: round(v, 5) for k, v in figures.items()}


def score(figures: dict[str, float]) -> float:
    """Higher is better: mean PSNR against the truth if known, else minus the mean distance."""
    psnrs = [v for k, v in figures.items() if k in ("psnr_A", "psnr_B") and math.isfinite(v)]
    if psnrs:
        return sum(psnrs) / len(psnrs)
    return -(figures["swd_A"] + figures["swd_B"]) / 2


def prepare(config: DataConfig, domains: Any, every: int, multiple: int
            ) -> tuple[Any, Validator | None, dict[str, Any]]:
    """The domains to train on, the Validator (None when validation is off), and what the
    ``started`` event says about it: image counts, whether they are held out, truth."""
    from dataclasses import replace

    from cyclestudio.core.imagescan import scan

    if every <= 0:
        return domains, None, {}

    def named(folder: str, flag: str) -> list[Path]:
        good, _bad = scan([Path(folder)])
        if not good:
            raise UserError(f"{flag} {folder} holds no readable images", "give a folder of images")
        return hold_out(good, config.val_images)[1]  # --val-images of them, spread out

    held = {}
    train_a, val_a = ((domains.a, named(config.val_a, "--val-a")) if config.val_a
                      else hold_out(domains.a, config.val_images))
    train_b, val_b = ((domains.b, named(config.val_b, "--val-b")) if config.val_b
                      else hold_out(domains.b, config.val_images))
    held["A"] = bool(config.val_a) or len(train_a) < len(domains.a)
    held["B"] = bool(config.val_b) or len(train_b) < len(domains.b)
    truth_a = paired_truth(val_a, Path(config.val_truth), "--val-truth") if (
        config.val_truth) else None
    truth_b = paired_truth(val_b, Path(config.val_b_truth), "--val-b-truth") if (
        config.val_b_truth) else None
    validator = Validator(val_a, val_b, config, multiple, truth_a, truth_b)
    info = {"images": {"A": len(val_a), "B": len(val_b)}, "held_out": held,
            "truth": {"A": truth_a is not None, "B": truth_b is not None}}
    return replace(domains, a=train_a, b=train_b), validator, info
