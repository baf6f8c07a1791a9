"""Folder translation speed: `cyclestudio translate` against a plain per-image fp32 loop.

    python benchmarks/translate_speed.py [--images 12] [--size 512] [--rounds 2]

Both sides use the same network (ResNet-9 generator, width 64, fixed random weights
exported as a .csmodel) on the same images. The plain loop is what the reference
implementation's test script does per image: PIL decode → tensor → generator (fp32,
no_grad) → PIL encode. The fast path is cyclestudio's: equal sizes batched, bf16
where the CPU runs it natively, inference mode, decoding and encoding in threads
alongside compute. Rounds alternate plain and fast so that load from other processes
hits both alike. The PSNR between the two outputs shows they look the same.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def make_images(folder: Path, count: int, size: int) -> list[Path]:
    """Smooth, photo-like test images (demo scenes scaled up, with a little grain)."""
    from cyclestudio.core.demo import scene

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        base = Image.fromarray((scene(10 + i) * 255).astype(np.uint8)).resize(
            (size, size), Image.Resampling.BICUBIC)
        arr = np.asarray(base, dtype=np.float32) + rng.normal(0, 4, (size, size, 3))
        path = folder / f"img_{i:03d}.png"
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def make_model(folder: Path) -> Path:
    from model_helpers import make_run

    from cyclestudio.core.modelfile import export_model

    # The paper's initialisation, untouched: the closest stand-in for trained weights.
    run = make_run(folder / "run", generator="resnet_9blocks", options={}, perturb=0.0)
    return export_model(run, folder / "resnet9.csmodel")


def plain_loop(model_path: Path, images: list[Path], out: Path) -> tuple[float, float]:
    """The reference way: one image at a time, fp32, no_grad; (wall, CPU) seconds."""
    from cyclestudio.core.modelfile import load_model

    net = load_model(model_path, "cpu").G_A
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter(), time.process_time()
    for path in images:
        im = Image.open(path).convert("RGB")
        x = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
        with torch.no_grad():
            y = net(x)
        arr = ((y[0].permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).round().astype(np.uint8)
        Image.fromarray(arr).save(out / f"{path.stem}_zebra.png")
    return time.perf_counter() - start[0], time.process_time() - start[1]


def fast_path(model_path: Path, images: list[Path], out: Path, precision: str,
              batch_size: int, compile: bool = False) -> tuple[float, float]:
    """cyclestudio's translate pipeline, model loading excluded; (wall, CPU) seconds."""
    from cyclestudio.core.modelfile import load_translator
    from cyclestudio.jobs.translate import Settings, plan_items, translate_items

    translator = load_translator(model_path, "cpu", precision=precision, compile=compile)
    if compile:  # compiling is a one-off cost per process (cached on disk); time it apart
        start = time.perf_counter()
        translator.translate_batch([np.asarray(Image.open(images[0]).convert("RGB"))] * min(
            batch_size, len(images)))
        print(f"  torch.compile warm-up: {time.perf_counter() - start:.1f} s", flush=True)
    items, _ = plan_items(images, out, "_zebra", "png", overwrite=True)
    outcomes = []
    start = time.perf_counter(), time.process_time()
    translate_items(translator, items, Settings(batch_size=batch_size), outcomes.append)
    seconds = time.perf_counter() - start[0], time.process_time() - start[1]
    assert all(o.status == "translated" for o in outcomes), outcomes
    return seconds


def psnr_between(a: Path, b: Path) -> float:
    values = []
    for f in sorted(a.glob("*.png")):
        x = np.asarray(Image.open(f), dtype=np.float64) / 255
        y = np.asarray(Image.open(b / f.name), dtype=np.float64) / 255
        mse = float(np.mean((x - y) ** 2))
        values.append(math.inf if mse == 0 else 10 * math.log10(1 / mse))
    return min(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1,
                        help="1 is translate's CPU default (batching measured slower on CPU)")
    args = parser.parse_args()

    from cyclestudio.core.devices import cpu_has_fast_bf16

    work = Path(tempfile.mkdtemp(prefix="cyclestudio-bench-"))
    images = make_images(work / "in", args.images, args.size)
    model = make_model(work)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"native bf16: {cpu_has_fast_bf16()}; {args.images} images {args.size}×{args.size}, "
          f"ResNet-9 width 64")
    results: dict[str, list[tuple[float, float]]] = {"plain fp32 loop": [], "cyclestudio fp32": [],
                                       "cyclestudio auto": [], "cyclestudio auto+compile": []}
    for r in range(args.rounds):
        results["plain fp32 loop"].append(plain_loop(model, images, work / "plain"))
        results["cyclestudio fp32"].append(
            fast_path(model, images, work / "fast32", "fp32", args.batch_size))
        results["cyclestudio auto"].append(
            fast_path(model, images, work / "fast", "auto", args.batch_size))
        results["cyclestudio auto+compile"].append(
            fast_path(model, images, work / "fastc", "auto", args.batch_size, compile=True))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1][0]:.1f} s" for k, v in results.items()),
              flush=True)
    # Wall time is what a user waits; CPU time (all threads of this process) is less
    # disturbed by other programs on a shared machine. Both are reported.
    base = statistics.median(t for t, _ in results["plain fp32 loop"])
    base_cpu = statistics.median(c for _, c in results["plain fp32 loop"])
    print(f"\n{'path':<20}{'wall s':>8}{'images/s':>10}{'speed-up':>10}{'CPU s':>8}"
          f"{'CPU speed-up':>14}")
    for name, times in results.items():
        t = statistics.median(w for w, _ in times)
        c = statistics.median(c for _, c in times)
        print(f"{name:<20}{t:>8.1f}{args.images / t:>10.3f}{base / t:>9.2f}×{c:>8.1f}"
              f"{base_cpu / c:>13.2f}×")
    print()
    for name, folder in (("fp32", "fast32"), ("auto", "fast"), ("auto+compile", "fastc")):
        worst = psnr_between(work / "plain", work / folder)
        print(f"PSNR plain vs cyclestudio {name}: {worst:.1f} dB (worst image)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
