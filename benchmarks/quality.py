"""How close to the truth do the presets get on a small CPU budget? The real `cyclestudio train`.

    python benchmarks/quality.py [--out DIR] [--tasks colour,blur,shape,texture]
                                 [--presets paper,fast] [--minutes 2,4,10] [--parallel 2]

Four generated unpaired tasks, each with held-out truth (numpy + PIL, fixed seeds, no
downloads), 64×64 px:

    colour  B = a 3×3 colour matrix then a per-channel gamma of A (a colour grade)
    blur    B = A blurred (Gaussian, σ = 1.2 px): A→B blurs, B→A sharpens
    shape   the same scenes with every object a circle (A) or a square of equal area (B)
    texture the same scenes with every object filled flat (A) or striped in its own two
            colours, 4–8 px a period (B): detail that is content, not a blur

Scenes are gradients with smooth colour noise and 2–5 objects filled flat, with
gradients, stripes, checks or speckle (texture: flat or striped only). The truth of a
held-out A image is the same scene drawn as B (and the other way round), so PSNR and
SSIM against it are exact.

Each (task, preset) is one `python -m cyclestudio train --events` process with the
held-out images as validation (`--val-a/--val-truth/--val-b/--val-b-truth`), one torch
thread (`OMP_NUM_THREADS=1`), loader workers 0 (all its work in one process) and
`OMP_WAIT_POLICY=PASSIVE` (spinning threads would count as CPU). The budget is the
process's CPU time (user + system, from /proc, so other load on the machine does not
count), from its ``started`` event (plus the colour and sharpness starts before it,
which the event reports), without the validation passes: the benchmark reads
the CPU time when the ``progress`` event just before a validation pass arrives and when
its ``validation`` event arrives, and leaves the difference out. Each mark reports the
last validation line of metrics.jsonl at or before it (so the figure is for at most
that much training). The run is stopped once the last mark has passed.

Writes DIR/results.json (and each run's rows.json, which ``--report`` reads to print
the table again) and prints a Markdown table (benchmarks/README.md, "Quality").
Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 64
TRAIN_IMAGES = 200
TEST_IMAGES = 16
SUPER = 4  # scenes are drawn SUPER× larger and box-reduced: anti-aliased edges
SEEDS = (1_000_000, 2_000_000, 3_000_000, 4_000_000)  # A train, B train, test A, test B
KINDS = ("colour", "blur", "shape", "texture")
# Validation passes every N iterations, about every 20–30 CPU-s of training at 64 px on
# one thread (the paper's step costs ~7× the fast preset's). They are not counted.
VAL_EVERY = {"paper": 8, "fast": 50}


# ----------------------------------------------------------------------------- scenes
def _value_noise(rng: np.random.Generator, size: int, cells: int, channels: int) -> np.ndarray:
    """Smooth noise in [-1, 1]: a cells×cells random grid, bicubically enlarged."""
    grid = rng.uniform(0, 255, (cells, cells, channels)).astype(np.uint8)
    planes = [np.asarray(Image.fromarray(grid[:, :, c]).resize((size, size), Image.BICUBIC),
                         dtype=np.float64) for c in range(channels)]
    return np.stack(planes, -1) / 127.5 - 1.0


def _pattern(rng: random.Random, nrng: np.random.Generator, big: int,
             c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """A (big, big, 3) fill: flat, linear gradient, stripes, checks or speckle."""
    kind = rng.choice(("flat", "gradient", "stripes", "checks", "speckle"))
    yy, xx = np.mgrid[0:big, 0:big] / big
    if kind == "flat":
        return np.broadcast_to(c1, (big, big, 3)).copy()
    if kind == "gradient":
        a = rng.uniform(0, 2 * math.pi)
        t = np.cos(a) * xx + np.sin(a) * yy
        t = (t - t.min()) / (np.ptp(t) + 1e-9)
        return c1 * (1 - t[..., None]) + c2 * t[..., None]
    if kind == "stripes":
        a = rng.uniform(0, math.pi)
        period = rng.uniform(0.06, 0.16)  # of the image side: 4..10 px at 64 px
        t = (np.cos(a) * xx + np.sin(a) * yy) / period
        m = (np.sin(2 * math.pi * t) > 0).astype(np.float64)
        return c1 * (1 - m[..., None]) + c2 * m[..., None]
    if kind == "checks":
        period = rng.uniform(0.08, 0.18)
        m = ((np.floor(xx / period) + np.floor(yy / period)) % 2).astype(np.float64)
        return c1 * (1 - m[..., None]) + c2 * m[..., None]
    n = (_value_noise(nrng, big, rng.randint(8, 14), 1)[:, :, 0] + 1) / 2  # speckle
    return c1 * (1 - n[..., None]) + c2 * n[..., None]


def _fill(kind: str, rng: random.Random, big: int, c1: np.ndarray,
          c2: np.ndarray) -> np.ndarray:
    """An object's fill of one ``kind``: flat ``c1``, or stripes of ``c1`` and ``c2``."""
    if kind == "flat":
        return np.broadcast_to(c1, (big, big, 3)).copy()
    yy, xx = np.mgrid[0:big, 0:big] / big
    a = rng.uniform(0, math.pi)
    period = rng.uniform(0.06, 0.12)  # of the image side: 4..8 px at 64 px
    t = (np.cos(a) * xx + np.sin(a) * yy) / period
    m = (np.sin(2 * math.pi * t) > 0).astype(np.float64)
    return c1 * (1 - m[..., None]) + c2 * m[..., None]


def _colour(rng: random.Random, lo: float = 0.08, hi: float = 0.95) -> np.ndarray:
    return np.array([rng.uniform(lo, hi) for _ in range(3)])


def scene(seed: int, size: int = SIZE, shape_kind: str | None = None,
          fill_kind: str | None = None) -> np.ndarray:
    """A deterministic scene as [0, 1] floats (size, size, 3).

    ``shape_kind`` ("circle" or "square") draws every object as that shape, with equal
    area; ``fill_kind`` ("flat" or "stripes") fills every object that way, in its own
    colours; layout and colours depend only on ``seed``, so one seed gives a matched pair.
    """
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    big = size * SUPER
    yy, xx = np.mgrid[0:big, 0:big] / big
    a = rng.uniform(0, 2 * math.pi)
    t = np.cos(a) * xx + np.sin(a) * yy
    t = ((t - t.min()) / (np.ptp(t) + 1e-9))[..., None]
    top, bottom = _colour(rng, 0.2, 0.95), _colour(rng, 0.2, 0.95)
    canvas = top * (1 - t) + bottom * t
    canvas = np.clip(canvas + 0.08 * _value_noise(nrng, big, rng.randint(3, 6), 3), 0, 1)
    for index in range(rng.randint(2, 5)):
        c1, c2 = _colour(rng), _colour(rng)
        cx, cy = rng.uniform(0.12, 0.88) * big, rng.uniform(0.12, 0.88) * big
        r = rng.uniform(0.09, 0.22) * big
        kind = rng.choice(("circle", "box", "triangle"))
        box_aspect = rng.uniform(0.5, 1.0)
        tri_angle = rng.uniform(0, 2 * math.pi)
        outline = rng.random() < 0.35
        fill = _pattern(rng, nrng, big, c1, c2)
        if fill_kind is not None:  # the same draws either way: the layout stays matched
            fill = _fill(fill_kind, random.Random(seed * 100 + index), big, c1, c2)
        mask_im = Image.new("L", (big, big), 0)
        draw = ImageDraw.Draw(mask_im)
        if shape_kind == "circle" or (shape_kind is None and kind == "circle"):
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        elif shape_kind == "square":
            h = r * math.sqrt(math.pi) / 2  # half side: the circle's area
            draw.rectangle((cx - h, cy - h, cx + h, cy + h), fill=255)
        elif kind == "box":
            draw.rectangle((cx - r, cy - r * box_aspect, cx + r, cy + r), fill=255)
        else:
            draw.polygon([(cx + r * math.cos(tri_angle + k * 2 * math.pi / 3),
                           cy + r * math.sin(tri_angle + k * 2 * math.pi / 3))
                          for k in range(3)], fill=255)
        mask = np.asarray(mask_im, dtype=np.float64)[..., None] / 255
        canvas = canvas * (1 - mask) + fill * mask
        if outline:
            ring = np.asarray(mask_im.filter(ImageFilter.MaxFilter(2 * SUPER + 1)),
                              dtype=np.float64)[..., None] / 255 - mask
            canvas = canvas * (1 - ring) + (c1 * 0.25) * ring
    im = Image.fromarray((np.clip(canvas, 0, 1) * 255).round().astype(np.uint8), "RGB")
    return np.asarray(im.resize((size, size), Image.Resampling.BOX), dtype=np.float64) / 255


GRADE_MATRIX = np.array([[0.80, 0.20, 0.00],
                         [0.10, 0.75, 0.15],
                         [0.05, 0.30, 0.65]])  # rows sum to 1: [0, 1] stays in [0, 1]
GRADE_GAMMA = np.array([0.75, 1.1, 1.6])
BLUR_SIGMA = 1.2


def grade(image: np.ndarray) -> np.ndarray:
    """A teal-and-orange-ish colour grade: mix the channels, then a per-channel gamma."""
    return np.power(np.clip(image @ GRADE_MATRIX.T, 0, 1), GRADE_GAMMA)


def blur(image: np.ndarray, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """Separable Gaussian blur with reflected borders."""
    radius = int(math.ceil(3 * sigma))
    k = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma**2))
    k /= k.sum()
    p = np.pad(image, ((radius, radius), (radius, radius), (0, 0)), mode="reflect")
    h, w = image.shape[:2]
    rows = sum(k[i] * p[:, i:i + w] for i in range(len(k)))
    return sum(k[i] * rows[i:i + h] for i in range(len(k)))


def pair(kind: str) -> tuple[Callable[[int], np.ndarray], Callable[[int], np.ndarray]]:
    """(domain A's image of a seed, domain B's image of the same seed)."""
    if kind == "colour":
        return scene, lambda s: grade(scene(s))
    if kind == "blur":
        return scene, lambda s: blur(scene(s))
    if kind == "shape":
        return (lambda s: scene(s, shape_kind="circle"),
                lambda s: scene(s, shape_kind="square"))
    if kind == "texture":
        return (lambda s: scene(s, fill_kind="flat"),
                lambda s: scene(s, fill_kind="stripes"))
    raise SystemExit(f"unknown task {kind!r}; use {', '.join(KINDS)}")


def _save(image: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8), "RGB").save(path)


def make_task(kind: str, folder: Path, train: int = TRAIN_IMAGES,
              test: int = TEST_IMAGES) -> dict[str, Path]:
    """Write a task's six folders (A, B, testA, testA_truth, testB, testB_truth) once."""
    roles = {r: folder / r for r in ("A", "B", "testA", "testA_truth", "testB", "testB_truth")}
    if (folder / "done").exists():
        return roles
    make_a, make_b = pair(kind)
    for i in range(train):  # A and B from different seeds: unpaired
        _save(make_a(SEEDS[0] + i), roles["A"] / f"{i:04d}.png")
        _save(make_b(SEEDS[1] + i), roles["B"] / f"{i:04d}.png")
    for i in range(test):
        _save(make_a(SEEDS[2] + i), roles["testA"] / f"{i:04d}.png")
        _save(make_b(SEEDS[2] + i), roles["testA_truth"] / f"{i:04d}.png")
        _save(make_b(SEEDS[3] + i), roles["testB"] / f"{i:04d}.png")
        _save(make_a(SEEDS[3] + i), roles["testB_truth"] / f"{i:04d}.png")
    (folder / "done").touch()
    return roles


# ----------------------------------------------------------------------------- runs
TICK = 1 / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK


def train(task: dict[str, Path], preset: str, run: Path, budget: float, val_every: int,
          threads: int, log: Callable[[str], None], extra: Sequence[str] = ()) -> list[dict]:
    """One `cyclestudio train` run; the validation figures with training CPU-s at each."""
    cmd = [sys.executable, "-m", "cyclestudio", "train", "--preset", preset, *extra,
           "--a", str(task["A"]), "--b", str(task["B"]), "--out", str(run),
           "--val-a", str(task["testA"]), "--val-truth", str(task["testA_truth"]),
           "--val-b", str(task["testB"]), "--val-b-truth", str(task["testB_truth"]),
           "--val-every", str(val_every), "--log-every", str(val_every),
           "--size", str(SIZE), "--device", "cpu", "--workers", "0", "--seed", "0",
           "--sample-every", "1000000", "--iterations", "1000000", "--events"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=env, cwd=Path(__file__).resolve().parents[1])
    start = None  # CPU-s at the started event
    excluded = 0.0  # CPU-s spent validating
    before = None  # CPU-s when the progress event before a validation arrived
    stamps: dict[int, float] = {}
    stopping = False
    assert proc.stdout is not None and proc.stdin is not None
    for line in proc.stdout:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        now = cpu_seconds(proc.pid) if proc.poll() is None else None
        kind = event.get("event")
        if kind == "started" and now is not None:
            # The colour and sharpness starts run before the started event: their CPU
            # time counts.
            start = now - float(event.get("starts_seconds")
                                or (event.get("colour_start") or {}).get("seconds") or 0.0)
        elif kind == "progress" and now is not None:
            before = now
        elif kind == "validation" and now is not None and start is not None:
            mark = before if before is not None else now
            stamps[event["iteration"]] = mark - start - excluded
            excluded += now - mark
            before = None
            figures = event["figures"]
            log(f"{run.name}: it {event['iteration']} {stamps[event['iteration']]:.0f} CPU-s "
                f"psnr {figures.get('psnr_A', 0):.2f}/{figures.get('psnr_B', 0):.2f}")
            if stamps[event["iteration"]] >= budget and not stopping:
                proc.stdin.write("stop\n")
                proc.stdin.flush()
                stopping = True
        elif kind == "error":
            log(f"{run.name}: {event.get('message')}")
    proc.wait()
    rows = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "validation" in entry and entry["iteration"] in stamps:
            rows.append({"iteration": entry["iteration"], "cpu_s": stamps[entry["iteration"]],
                         **entry["validation"]})
    return rows


def at_mark(rows: list[dict], seconds: float) -> dict | None:
    """The last validation at or before ``seconds`` of training CPU (None: not reached)."""
    if not rows or rows[-1]["cpu_s"] < seconds:
        return None
    done = [r for r in rows if r["cpu_s"] <= seconds]
    return done[-1] if done else None


# ----------------------------------------------------------------------------- report
def _cell(row: dict | None, suffix: str = "") -> str:
    if row is None:
        return "–"
    return (f"{row['psnr_A' + suffix]:.1f} / {row['psnr_B' + suffix]:.1f} "
            f"({(row['ssim_A' + suffix] + row['ssim_B' + suffix]) / 2:.3f})")


def table(results: dict, minutes: list[float]) -> str:
    """Markdown: per task, the untranslated inputs, then each preset at each mark."""
    head = ("| task | recipe | " + " | ".join(f"{m:g} CPU-min" for m in minutes)
            + " | iterations at the last mark |")
    lines = [head, "|" + " --- |" * (len(minutes) + 3)]
    for kind, by_preset in results.items():
        first = next((rows[0] for rows in by_preset.values() if rows), None)
        if first is not None:
            lines.append(f"| {kind} | untranslated input | "
                         + " | ".join([_cell(first, "_input")] * len(minutes)) + " | |")
        for preset, rows in by_preset.items():
            cells = [_cell(at_mark(rows, m * 60)) for m in minutes]
            last = at_mark(rows, minutes[-1] * 60) or (rows[-1] if rows else None)
            its = f"{last['iteration']} ({last['cpu_s']:.0f} CPU-s)" if last else "–"
            lines.append(f"| {kind} | {preset} | " + " | ".join(cells) + f" | {its} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("quality-runs"))
    parser.add_argument("--tasks", default=",".join(KINDS))
    parser.add_argument("--presets", default="paper,fast",
                        help="presets, or LABELs of --variant, to compare")
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=PRESET:ARGS",
                        help="a preset with more train flags, e.g. "
                             "'gain8=fast:--generator-option pixel_gain=8'")
    parser.add_argument("--minutes", default="2,4,8,10",
                        help="CPU-minute marks; the runs stop after the last")
    parser.add_argument("--parallel", type=int, default=2, help="runs at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--report", action="store_true",
                        help="only print the table again from the runs under --out")
    args = parser.parse_args(argv)
    kinds, presets = args.tasks.split(","), args.presets.split(",")
    from cyclestudio.options import PRESETS

    variants = {}
    for text in args.variant:
        label, eq, rest = text.partition("=")
        base, colon, flags = rest.partition(":")
        if not (label and eq and colon):
            parser.error(f"--variant {text!r}: write LABEL=PRESET:FLAGS, e.g. "
                         "'hinge=fast:--gan-loss hinge'")
        if base not in PRESETS:
            parser.error(f"--variant {text!r}: no preset {base!r}; use one of "
                         + ", ".join(PRESETS))
        try:
            variants[label] = (base, shlex.split(flags))
        except ValueError as error:
            parser.error(f"--variant {text!r}: its flags do not parse ({error})")
    unknown = [p for p in presets if p not in PRESETS and p not in variants]
    if unknown:
        parser.error(f"--presets: {', '.join(unknown)} is neither a preset ("
                     + ", ".join(PRESETS) + ") nor the LABEL of a --variant")
    minutes = [float(m) for m in args.minutes.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report:
        results = {k: {p: json.loads((args.out / "runs" / f"{k}-{p}" / "rows.json").read_text())
                       for p in presets if (args.out / "runs" / f"{k}-{p}" / "rows.json").exists()}
                   for k in kinds}
        print(table(results, minutes))
        return 0
    tasks = {k: make_task(k, args.out / "tasks" / k) for k in kinds}
    lock = threading.Lock()

    def log(text: str) -> None:
        with lock:
            print(text, flush=True)

    def one(kind: str, preset: str) -> list[dict]:
        run = args.out / "runs" / f"{kind}-{preset}"
        if run.exists():
            import shutil

            shutil.rmtree(run)
        base, extra = variants.get(preset, (preset, []))
        rows = train(tasks[kind], base, run, minutes[-1] * 60,
                     VAL_EVERY.get(base, 25), args.threads, log, extra)
        (run / "rows.json").write_text(json.dumps(rows))  # for --report
        return rows

    jobs = [(k, p) for k in kinds for p in presets]
    started = time.time()
    with ThreadPoolExecutor(args.parallel) as pool:
        done = {job: pool.submit(one, *job) for job in jobs}
    results = {k: {p: done[(k, p)].result() for p in presets} for k in kinds}
    (args.out / "results.json").write_text(json.dumps(
        {"minutes": minutes, "threads": args.threads, "parallel": args.parallel,
         "wall_s": round(time.time() - started), "results": results}, indent=1))
    print("\nPSNR A→B / B→A in dB (mean SSIM of both directions) against the truth:\n")
    print(table(results, minutes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
