"""Unaligned two-domain data: each step takes the next A image and a random B image.

Every random choice (the per-epoch order of A, the B draw, crop and flip) is a pure
function of (seed, epoch, position), so a run resumed mid-epoch sees exactly the
images and crops it would have seen, whichever DataLoader worker decodes them.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from cyclestudio.core.config import DataConfig
from cyclestudio.core.imagecodec import load_rgb
from cyclestudio.core.imagescan import BadFile, scan
from cyclestudio.errors import UserError


@dataclass(frozen=True)
class Domains:
    """The readable images of both domains, and the files skipped with their reasons."""

    a: list[Path]
    b: list[Path]
    skipped: list[BadFile]


def _domain_files(paths: Sequence[str], flag: str) -> tuple[list[Path], list[BadFile]]:
    if not paths:
        raise UserError(f"no {flag} folder given", f"use {flag} DIR with that domain's images")
    for p in paths:
        if not Path(p).exists():
            raise UserError(f"{flag} {p} does not exist", "check the folder name")
    good, bad = scan([Path(p) for p in paths])
    where = ", ".join(str(p) for p in paths)
    if not good and not bad:
        raise UserError(
            f"{flag} {where} holds no images",
            "put .png, .jpg, .webp, .tif or .bmp files there (subfolders count)",
        )
    if not good:
        reasons = "; ".join(f"{b.path.name}: {b.reason}" for b in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise UserError(
            f"{flag} {where}: none of its {len(bad)} image files can be read ({reasons}{more})",
            "replace or re-export those files",
        )
    return good, bad


def find_domains(config: DataConfig) -> Domains:
    """Scan both domains' folders; raise UserError when a domain has nothing usable."""
    a, bad_a = _domain_files(config.a, "--a")
    b, bad_b = _domain_files(config.b, "--b")
    return Domains(a, b, bad_a + bad_b)


def _resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bicubic with antialiasing (PIL's filter) on a uint8 (C, H, W) tensor.

    torchvision's uint8 kernel is vectorised: 256² → 286² takes 0.4 ms against PIL's
    2.1 ms (benchmarks/torchvision_vs_ours.py).
    """
    if tuple(x.shape[-2:]) == (height, width):
        return x
    return TF.resize(x, [height, width], interpolation=TF.InterpolationMode.BICUBIC,
                     antialias=True)


def _at_least(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if w >= size and h >= size:
        return x
    scale = size / min(w, h)
    return _resize(x, max(size, round(h * scale)), max(size, round(w * scale)))


def _random_crop(x: torch.Tensor, size: int, rng: random.Random) -> torch.Tensor:
    x = _at_least(x, size)
    h, w = x.shape[-2:]
    left = rng.randint(0, w - size)
    top = rng.randint(0, h - size)
    return x[:, top:top + size, left:left + size]


def _center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    x = _at_least(x, size)
    h, w = x.shape[-2:]
    left, top = (w - size) // 2, (h - size) // 2
    return x[:, top:top + size, left:left + size]


def _scale_width(x: torch.Tensor, width: int, at_least: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return _resize(x, max(at_least, round(h * width / w)), width)


def _round_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return _resize(x, max(multiple, round(h / multiple) * multiple),
                   max(multiple, round(w / multiple) * multiple))


def prepare(
    x: torch.Tensor, config: DataConfig, rng: random.Random | None, multiple: int = 4
) -> torch.Tensor:
    """The CycleGAN preprocessing of a uint8 (C, H, W) image; ``rng`` None means
    deterministic (centre crop, no flip)."""
    p, size, load = config.preprocess, config.size, config.load_size
    if p == "resize_and_crop":
        x = _resize(x, load, load)
        x = _random_crop(x, size, rng) if rng else _center_crop(x, size)
    elif p == "crop":
        x = _random_crop(x, size, rng) if rng else _center_crop(x, size)
    elif p == "scale_width":
        x = _round_to(_scale_width(x, size, size), multiple)
    elif p == "scale_width_and_crop":
        x = _scale_width(x, load, size)
        x = _random_crop(x, size, rng) if rng else _center_crop(x, size)
    else:  # none
        x = _round_to(x, multiple)
    if config.flip and rng is not None and rng.random() < 0.5:
        x = TF.horizontal_flip(x)
    return x


def _shrinks_to(config: DataConfig) -> int | None:
    """The smallest side the preprocessing resizes every image down towards, if it does."""
    if config.preprocess == "resize_and_crop":
        return config.load_size
    if config.preprocess == "scale_width":
        return config.size
    if config.preprocess == "scale_width_and_crop":
        return config.load_size
    return None  # crop and none keep the pixels as they are


def load_pixels(path: Path, config: DataConfig) -> torch.Tensor:
    """``path`` decoded upright as a uint8 (C, H, W) tensor, C the model's channels.

    A large JPEG the preprocessing shrinks anyway is decoded at a reduced scale (never
    below the size it is resized to): a 4000×3000 photo in a sixth of the time.
    """
    im = load_rgb(path, at_least=_shrinks_to(config))
    if config.channels == 1:
        im = im.convert("L")
    arr = np.array(im)  # a writable copy: torch refuses read-only buffers
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr).permute(2, 0, 1)


def to_tensor(x: torch.Tensor) -> torch.Tensor:
    """A uint8 (C, H, W) image as floats in [-1, 1], the models' range."""
    return x.float().div_(127.5).sub_(1.0)


def to_image(t: torch.Tensor) -> Image.Image:
    """A (C, H, W) tensor in [-1, 1] as an 8-bit PIL image."""
    arr = ((t.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
    arr = arr.transpose(1, 2, 0)
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)


class UnalignedDataset(Dataset):
    """Decodes the pair a key names: (A index, B index, augmentation seed)."""

    def __init__(self, a: Sequence[Path], b: Sequence[Path], config: DataConfig, multiple: int):
        self.a, self.b, self.config, self.multiple = list(a), list(b), config, multiple

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def _load(self, path: Path, rng: random.Random) -> torch.Tensor:
        try:
            x = load_pixels(path, self.config)
        except Exception as exc:  # noqa: BLE001 - a file changed after the scan
            raise UserError(f"{path} can no longer be read: {exc}", "remove it and resume") from exc
        return to_tensor(prepare(x, self.config, rng, self.multiple))

    def __getitem__(self, key: tuple[int, int, str]) -> dict[str, torch.Tensor]:
        ia, ib, seed = key
        return {
            "A": self._load(self.a[ia], random.Random(seed + "/A")),
            "B": self._load(self.b[ib], random.Random(seed + "/B")),
        }


class EpochBatches:
    """Batches of keys for one epoch, starting at a given batch position.

    Set ``epoch`` and ``start`` before each pass; the DataLoader iterates this in the
    main process, so workers need not know the position.

    With several processes (``world_size``), an iteration is one global batch of
    ``world_size × batch_size`` positions and process ``rank`` takes its own slice of
    them, so the processes together see exactly what one process with the whole batch
    would. ``per_epoch`` (iterations) is fixed by the schedule; when a run is resumed
    with another number of processes an epoch keeps its iterations (positions past the
    end of A's order wrap around it).
    """

    def __init__(self, n_a: int, n_b: int, batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1, per_epoch: int | None = None) -> None:
        self.n_a, self.n_b, self.batch_size, self.seed = n_a, n_b, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.per_epoch = per_epoch
        self.epoch = 0
        self.start = 0

    @property
    def batches_per_epoch(self) -> int:
        if self.per_epoch is not None:
            return self.per_epoch
        return max(1, max(self.n_a, self.n_b) // (self.batch_size * self.world_size))

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start

    def __iter__(self) -> Iterator[list[tuple[int, int, str]]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n_a, generator=g).tolist()
        step = self.batch_size * self.world_size
        for batch in range(self.start, self.batches_per_epoch):
            keys = []
            first = batch * step + self.rank * self.batch_size
            for pos in range(first, first + self.batch_size):
                tag = f"{self.seed}/{self.epoch}/{pos}"
                ia = order[pos % self.n_a]
                ib = random.Random(tag + "/pick-B").randrange(self.n_b)
                keys.append((ia, ib, tag))
            yield keys


def _worker_init(_worker_id: int) -> None:
    # A forked worker inherits the job's Ctrl-C/SIGTERM handler, which queues a clean
    # stop only the main process acts on. Stopping is the main process's business: a
    # terminal's Ctrl-C, `timeout` or a service manager signal the whole process group,
    # and a worker that died first would turn the clean stop into a crash. So workers
    # ignore both; the main process ends them when it stops, torch's watchdog ends them
    # within seconds if the main process is killed, and the app kills the whole group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_loader(
    domains: Domains,
    config: DataConfig,
    batch_size: int,
    seed: int,
    multiple: int,
    pin_memory: bool = False,
    rank: int = 0,
    world_size: int = 1,
    per_epoch: int | None = None,
) -> tuple[DataLoader, EpochBatches]:
    """The training DataLoader (decoding in worker processes) and its epoch/position control.

    ``rank`` and ``world_size`` pick this process's slice of each global batch.
    """
    batches = EpochBatches(len(domains.a), len(domains.b), batch_size, seed, rank, world_size,
                           per_epoch)
    dataset = UnalignedDataset(domains.a, domains.b, config, multiple)
    loader = DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=config.workers,
        persistent_workers=config.workers > 0,
        pin_memory=pin_memory,
        worker_init_fn=_worker_init if config.workers > 0 else None,
    )
    return loader, batches


def iterations_per_epoch(domains: Domains, batch_size: int) -> int:
    """Steps in one epoch: the larger domain, once, in batches."""
    return max(1, max(len(domains.a), len(domains.b)) // batch_size)


def fixed_images(paths: Sequence[Path], config: DataConfig, multiple: int) -> torch.Tensor:
    """These images preprocessed without randomness (centre crop, no flip), as one batch."""
    tensors = [to_tensor(prepare(load_pixels(p, config), config, None, multiple)) for p in paths]
    h = min(t.shape[1] for t in tensors)
    w = min(t.shape[2] for t in tensors)
    return torch.stack([t[:, :h, :w] for t in tensors])


def fixed_samples(
    paths: Sequence[Path], count: int, config: DataConfig, multiple: int
) -> torch.Tensor:
    """``count`` images spread over a domain, preprocessed without randomness."""
    chosen = [
        paths[round(i * (len(paths) - 1) / max(1, count - 1))]
        for i in range(min(count, len(paths)))
    ]
    return fixed_images(chosen, config, multiple)
