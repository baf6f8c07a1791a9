"""Whole commands, as a user runs them: `cyclestudio train` and `cyclestudio translate`
with their defaults against the plain fp32 way, start-up and file handling included.

    python benchmarks/whole_command.py [--rounds 3] [--iterations 6] [--photos 8]

Training: `cyclestudio train` at 128² with the default flags, against the same command
with every speed measure off (`--precision fp32 --channels-last off --fused-optimizer
off --benchmark off --compile off`: the reference implementation's plain fp32 step),
the paper's networks in both (`--preset paper`), and the new default preset beside
them. Seconds per iteration come from the job's own progress events (start-up apart),
and the whole process is timed too.

Translation: `cyclestudio translate` of N photo-like 512² PNGs with its defaults,
against a plain per-image fp32 loop in a fresh process (PIL decode → tensor →
generator → PIL encode; the reference implementation's way), both with the paper's
ResNet-9 generator. Rounds alternate the paths, so the machine's load hits both alike;
medians are printed. Also prints where a translate command's time goes (import,
model load, first image).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

PLAIN_TRAIN = ["--precision", "fp32", "--channels-last", "off", "--fused-optimizer", "off",
               "--benchmark", "off", "--compile", "off"]

PLAIN_LOOP = r'''
import sys, time
t0 = time.perf_counter()
import numpy as np, torch
from PIL import Image
from cyclestudio.core.modelfile import load_model
model = load_model(sys.argv[1], torch.device("cpu"))
g = model.generator("a2b").eval()
for path in sys.argv[3:]:
    x = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), np.float32) / 127.5 - 1)
    with torch.no_grad():
        y = g(x.permute(2, 0, 1)[None])[0]
    out = ((y.permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).round().astype(np.uint8)
    Image.fromarray(out).save(f"{sys.argv[2]}/{path.rsplit('/', 1)[-1]}")
'''


def photos(folder: Path, count: int, size: int) -> list[Path]:
    """Photo-like images: smooth gradients, shapes and noise (PNG)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        base = np.stack([xx, yy, (xx + yy) / 2], -1) * rng.uniform(0.4, 1.0, 3)
        base += rng.normal(0, 0.05, base.shape)
        path = folder / f"photo_{i:02d}.png"
        Image.fromarray((base.clip(0, 1) * 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def run(cmd: list[str]) -> tuple[float, list[dict]]:
    """Run a command to its end: (seconds, its events, each stamped with ``at``: seconds
    since the start when the line arrived)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = []
    for line in proc.stdout:
        if line.startswith("{"):
            events.append({**json.loads(line), "at": time.perf_counter() - start})
    err = proc.stderr.read()
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err[-2000:]}")
    return time.perf_counter() - start, events


def train_round(work: Path, data: Path, flags: list[str], iterations: int) -> tuple[float, float]:
    """(whole-process seconds, seconds per iteration after the first)."""
    out = work / f"run_{time.monotonic_ns()}"
    cmd = [sys.executable, "-m", "cyclestudio", "train", "--a", str(data / "A"), "--b",
           str(data / "B"), "--out", str(out), "--size", "128", "--iterations",
           str(iterations), "--log-every", "1", "--val-every", "0", "--events", *flags]
    seconds, events = run(cmd)
    times = [e["at"] for e in events if e["event"] == "progress"]
    per_it = ((times[-1] - times[0]) / (len(times) - 1)) if len(times) > 1 else float("nan")
    return seconds, per_it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    env_note = f"torch threads: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    print(env_note, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        from cyclestudio.core.modelfile import export_model

        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from model_helpers import make_run  # the paper's ResNet-9, fixed random weights

        model = export_model(make_run(work / "model_run", generator="resnet_9blocks",
                                      options={}))
        inputs = photos(work / "photos", args.photos, 512)
        if not args.skip_train:
            data = work / "data"
            photos(data / "A", 8, 160)
            photos(data / "B", 8, 160)
            rows: dict[str, list[tuple[float, float]]] = {}
            paths = {"paper, plain fp32": ["--preset", "paper", *PLAIN_TRAIN],
                     "paper, defaults": ["--preset", "paper"],
                     "default preset": []}
            for r in range(args.rounds):
                for name, flags in paths.items():
                    rows.setdefault(name, []).append(
                        train_round(work, data, flags, args.iterations))
                    print(f"train round {r + 1} {name}: {rows[name][-1]}", flush=True)
            base = statistics.median(p for _, p in rows["paper, plain fp32"])
            print("\n| training at 128² | whole process s | s/iteration | speed-up |")
            print("| --- | --- | --- | --- |")
            for name, values in rows.items():
                whole = statistics.median(w for w, _ in values)
                per = statistics.median(p for _, p in values)
                print(f"| {name} | {whole:.1f} | {per:.2f} | {base / per:.2f}× |")
        rows2: dict[str, list[float]] = {}
        for r in range(args.rounds):
            out = work / f"plain_{r}"
            out.mkdir()
            seconds, _ = run([sys.executable, "-c", PLAIN_LOOP, str(model), str(out),
                              *map(str, inputs)])
            rows2.setdefault("plain fp32 loop", []).append(seconds)
            seconds, events = run([sys.executable, "-m", "cyclestudio", "translate",
                                   str(model), *map(str, inputs), "--out",
                                   str(work / f"cs_{r}"), "--events"])
            rows2.setdefault("cyclestudio translate (defaults)", []).append(seconds)
            finished = [e for e in events if e["event"] == "finished"][0]
            print(f"translate round {r + 1}: plain {rows2['plain fp32 loop'][-1]:.1f} s, "
                  f"cyclestudio {seconds:.1f} s (batch itself {finished['seconds']:.1f} s)",
                  flush=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        torch_import = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cyclestudio", "--help"], check=True,
                       capture_output=True)
        cli_start = time.perf_counter() - start
        base = statistics.median(rows2["plain fp32 loop"])
        print(f"\n| {args.photos} photos of 512², whole command | median s | speed-up |")
        print("| --- | --- | --- |")
        for name, values in rows2.items():
            print(f"| {name} | {statistics.median(values):.1f} | "
                  f"{base / statistics.median(values):.2f}× |")
        print(f"\nstart-up: python -c 'import torch' {torch_import:.1f} s; "
              f"cyclestudio --help {cli_start:.1f} s")


if __name__ == "__main__":
    main()
