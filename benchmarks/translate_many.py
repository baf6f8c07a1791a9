"""Many small files through `cyclestudio translate`: files per second and peak memory.

    python benchmarks/translate_many.py [--files 10000] [--size 64] [--rounds 3]
                                        [--model demo|tiny] [--inputs DIR]

Generates ``--files`` photo-like PNGs of ``--size``² (kept in ``--inputs``, default
/tmp/cyclestudio-many-FILES-SIZE, and reused by later calls), then runs the real
command ``cyclestudio translate MODEL DIR --out OUT --device cpu`` in a child process
``--rounds`` times, each into a fresh output folder. For each round it reports the wall
time (process start to exit, model loading included), files per second, and the
child's peak resident memory (``ru_maxrss`` from ``wait4``). ``--model demo`` is the
shipped demo model (ResNet-6, width 16, trained at 64²); ``tiny`` is the tests' width-4
ResNet with one block, where the per-file overhead is nearly all there is.
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(ROOT / "tests"))


def make_inputs(folder: Path, count: int, size: int) -> None:
    """``count`` smooth PNGs with grain, 1,000 per subfolder (a tree, as photo folders are)."""
    done = folder / ".complete"
    if done.exists() and done.read_text() == f"{count} {size}":
        return
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        sub = folder / f"part{i // 1000:03d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        a, b, c = rng.uniform(0.2, 0.8, 3)
        rgb = np.stack([a * xx + 0.2, b * yy + 0.1, c * (1 - xx) * yy + 0.3], -1)
        rgb = rgb * 255 + rng.normal(0, 3, rgb.shape)
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(sub / f"img_{i:06d}.png")
    done.write_text(f"{count} {size}")


def model_path(kind: str, work: Path) -> Path:
    if kind == "demo":
        return ROOT / "resources" / "demo.csmodel"
    from model_helpers import make_run

    from cyclestudio.core.modelfile import export_model

    return export_model(make_run(work / "run"), work / "tiny.csmodel")


def one_round(model: Path, inputs: Path, out: Path, extra: list[str]) -> tuple[float, int, int]:
    """(wall seconds, peak RSS bytes, exit code) of one translate process."""
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "cyclestudio", "translate", str(model),
                             str(inputs), "--out", str(out), "--device", "cpu", *extra],
                            stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss * 1024, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", choices=("demo", "tiny"), default="demo")
    parser.add_argument("--inputs", type=Path, default=None)
    parser.add_argument("extra", nargs="*", help="more translate flags (after --)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cyclestudio-many-"))
    inputs = args.inputs or Path(tempfile.gettempdir()) / (
        f"cyclestudio-many-{args.files}-{args.size}")
    start = time.perf_counter()
    make_inputs(inputs, args.files, args.size)
    print(f"{args.files} {args.size}² PNGs in {inputs} (ready after "
          f"{time.perf_counter() - start:.0f} s); model {args.model}; load "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    model = model_path(args.model, work)
    rates, peaks = [], []
    for r in range(args.rounds):
        seconds, peak, code = one_round(model, inputs, work / "out", args.extra)
        written = sum(1 for _ in (work / "out").rglob("*.png"))
        rates.append(args.files / seconds)
        peaks.append(peak)
        print(f"round {r + 1}: exit {code}, {written} written, {seconds:.1f} s, "
              f"{args.files / seconds:.0f} files/s, peak RSS {peak / 2**20:.0f} MiB, load "
              f"{os.getloadavg()[0]:.1f}", flush=True)
    print(f"median {statistics.median(rates):.0f} files/s; peak RSS median "
          f"{statistics.median(peaks) / 2**20:.0f} MiB, worst {max(peaks) / 2**20:.0f} MiB")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
