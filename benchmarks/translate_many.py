"""Many small files through `cyclestudio translate`: files per second and peak memory.

    python benchmarks/translate_many.py [--files 10000] [--size 64] [--rounds 3]
                                        [--model demo|tiny] [--inputs DIR]

Generates ``--files`` photo-like PNGs of ``--size``² (kept in ``--inputs``, default
/tmp/cyclestudio-many-FILES-SIZE, and reused by later calls), then runs the real
command ``cyclestudio translate MODEL DIR --out OUT --device cpu`` in a child process
``--rounds`` times, each into a fresh output folder. For each round it reports the wall
time (process start to exit, model loading included), files per second, and the
child's CPU time and peak resident memory (its VmHWM, sampled every 0.5 s), its peak
anonymous memory (what the work costs, without the ~500 MB of torch's mapped libraries),
and its RSS at each tenth of the run (flat: memory does not grow with the files done).
``--model demo`` is the shipped demo model (ResNet-6, width 16, trained at 64²);
``tiny`` is the tests' width-4 ResNet with one block, where the per-file overhead is
nearly all there is.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
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


def _rss(pid: int) -> tuple[int, int, int]:
    """(resident, anonymous resident, peak resident) bytes of a process now, from /proc."""
    values = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon", "VmHWM"):
                    values[key] = int(rest.split()[0]) * 1024
    except OSError:
        return 0, 0, 0
    return values.get("VmRSS", 0), values.get("RssAnon", 0), values.get("VmHWM", 0)


def one_round(model: Path, inputs: Path, out: Path, extra: list[str]) -> dict[str, float]:
    """Wall and CPU seconds, peak RSS, peak anonymous RSS and RSS over time of one run."""
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "cyclestudio", "translate", str(model),
                             str(inputs), "--out", str(out), "--device", "cpu", *extra],
                            stdout=subprocess.DEVNULL, env=env)
    samples: list[tuple[float, int, int, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            rss, anon, peak = _rss(proc.pid)
            if rss:
                samples.append((time.perf_counter() - start, rss, anon, peak))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    # RSS at each tenth of the run: flat means memory does not grow with the files done.
    curve = [max((r for t, r, _, _ in samples if t <= seconds * k / 10), default=0)
             for k in range(1, 11)]
    # The process's own high-water mark (VmHWM). wait4's ru_maxrss is not used: it counts
    # helpers the process forks (import torch runs `ldconfig -p` through vfork, whose
    # child is charged the parent's whole RSS), ~100 MB more than the process ever held.
    return {"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime,
            "peak": max((p for *_, p in samples), default=0),
            "anon": max((a for _, _, a, _ in samples), default=0),
            "code": os.waitstatus_to_exitcode(status), "curve": curve}


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
    rates, cpus, peaks = [], [], []
    for r in range(args.rounds):
        result = one_round(model, inputs, work / "out", args.extra)
        written = sum(1 for _ in (work / "out").rglob("*.png"))
        seconds = result["seconds"]
        rates.append(args.files / seconds)
        cpus.append(result["cpu"] / args.files * 1000)
        peaks.append(result["peak"])
        curve = " ".join(f"{v / 2**20:.0f}" for v in result["curve"])
        print(f"round {r + 1}: exit {result['code']}, {written} written, {seconds:.1f} s, "
              f"{args.files / seconds:.0f} files/s, CPU {cpus[-1]:.2f} ms/file, peak RSS "
              f"{result['peak'] / 2**20:.0f} MiB (anonymous {result['anon'] / 2**20:.0f} MiB), "
              f"load {os.getloadavg()[0]:.1f}\n  RSS by tenths of the run (MiB): {curve}",
              flush=True)
    print(f"median {statistics.median(rates):.0f} files/s, CPU {statistics.median(cpus):.2f} "
          f"ms/file; peak RSS median {statistics.median(peaks) / 2**20:.0f} MiB, worst "
          f"{max(peaks) / 2**20:.0f} MiB")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
