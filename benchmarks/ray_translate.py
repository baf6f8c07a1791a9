"""`translate --ray` against the local path: what the engine costs on one machine.

    python benchmarks/ray_translate.py [--images 200] [--size 256] [--rounds 2]
                                        [--models demo resnet9]

Each round runs the real command line three ways on the same folder and model:
local (`cyclestudio translate`), `--ray` (starting a local Ray instance, as a user on
one machine would), and `--ray ADDRESS` (joining a Ray instance this script started
beforehand, as on a cluster that is already up). Wall time is the whole command, from
process start to exit; "batch" is the job's own `finished.seconds` (from planning to
the last file, without start-up and model loading). Models: the shipped demo model
(ResNet-6, width 16: light, so the overhead shows) and the paper's ResNet-9 (width 64,
its initialisation). Outputs of the Ray paths are compared with the local ones.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))


def run(model: Path, images: Path, out: Path, *extra: str) -> tuple[float, float, int]:
    """(wall seconds, batch seconds, translated) of one `cyclestudio translate` command."""
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cyclestudio", "translate", str(model),
                           str(images), "--out", str(out), "--events", *extra],
                          capture_output=True, text=True, env={**os.environ})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"translate {' '.join(extra)} failed:\n{done.stderr[-3000:]}")
    finished = json.loads(done.stdout.splitlines()[-1])
    return wall, float(finished["seconds"]), int(finished["translated"])


def worst_psnr(a: Path, b: Path) -> float:
    """The lowest PSNR over the outputs (inf when every file is byte-identical)."""
    worst = float("inf")
    for path in sorted(a.rglob("*.png")):
        other = b / path.relative_to(a)
        if path.read_bytes() == other.read_bytes():
            continue
        x = np.asarray(Image.open(path), dtype=np.float64)
        y = np.asarray(Image.open(other), dtype=np.float64)
        mse = float(np.mean((x - y) ** 2))
        worst = min(worst, 10 * np.log10(255**2 / mse) if mse else float("inf"))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--models", nargs="+", choices=("demo", "resnet9"),
                        default=["demo", "resnet9"])
    args = parser.parse_args()

    import ray
    from translate_speed import make_images, make_model

    work = Path(tempfile.mkdtemp(prefix="cyclestudio-ray-bench-"))
    try:
        images = work / "in"
        make_images(images, args.images, args.size)
        models = {}
        if "demo" in args.models:
            models["demo (ResNet-6, width 16)"] = ROOT / "resources" / "demo.csmodel"
        if "resnet9" in args.models:
            models["ResNet-9, width 64"] = make_model(work)
        cpus = os.cpu_count() or 1
        print(f"{args.images} images of {args.size}², {cpus} CPUs, load "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        for title, model in models.items():
            times: dict[str, list[tuple[float, float]]] = {}
            for _ in range(args.rounds):
                for name in ("local", "--ray (starts Ray)", "--ray ADDRESS (Ray up)"):
                    extra: tuple[str, ...] = ()
                    if name == "--ray (starts Ray)":
                        extra = ("--ray",)
                    elif name.startswith("--ray ADDRESS"):
                        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
                        extra = ("--ray", ray.get_runtime_context().gcs_address)
                    try:
                        out = work / ("local" if name == "local" else "ray")
                        wall, batch, count = run(model, images, out, *extra)
                    finally:
                        ray.shutdown()
                    assert count == args.images
                    times.setdefault(name, []).append((wall, batch))
                    print(f"  {title}: {name}: wall {wall:.1f} s, batch {batch:.1f} s "
                          f"(load {os.getloadavg()[0]:.1f})", flush=True)
            psnr = worst_psnr(work / "local", work / "ray")
            print(f"\n{title} (medians of {args.rounds}; worst PSNR of --ray vs local: "
                  f"{'identical' if psnr == float('inf') else f'{psnr:.1f} dB'})")
            print("| path | wall s | images/s (wall) | batch s | images/s (batch) |")
            print("| --- | --- | --- | --- | --- |")
            for name, rows in times.items():
                wall = statistics.median(w for w, _ in rows)
                batch = statistics.median(b for _, b in rows)
                print(f"| {name} | {wall:.1f} | {args.images / wall:.2f} | {batch:.1f} | "
                      f"{args.images / batch:.2f} |")
            print(flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
