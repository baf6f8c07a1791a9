"""Shared test helpers: tiny generated image domains and a way to run the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

TINY = [
    "--generator", "resnet_6blocks", "--generator-option", "width=4",
    "--discriminator-option", "width=4", "--size", "32", "--load-size", "36",
    "--workers", "0", "--device", "cpu",
]


def make_domain(folder: Path, count: int, kind: str, size: int = 40, seed: int = 0) -> Path:
    """Smooth images with a bright disc: 'warm' (red-ish) or 'cool' (the same, blue-ish)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r).astype(float)
        base = 0.3 + 0.4 * (xx * rng.uniform(0.5, 1) + yy * rng.uniform(0, 0.5))
        rgb = np.stack([base + 0.5 * disc, base * 0.6, base * 0.3 + 0.2 * disc], -1)
        if kind == "cool":
            rgb = rgb[:, :, ::-1]
        Image.fromarray((rgb.clip(0, 1) * 255).astype("uint8")).save(folder / f"{kind}_{i:03d}.png")
    return folder


def paired_task(root: Path, scene, mapping, train: int, test: int,
                seed: int = 0) -> dict[str, Path]:
    """An unpaired task with held-out truth, written as PNGs under ``root``: folders A
    (``scene(rng)``), B (``mapping`` of other scenes), testA and truth (its true B).

    ``scene(rng)`` and ``mapping(image)`` work on (H, W, 3) floats in [0, 1].
    """
    def save(image: np.ndarray, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((np.clip(image, 0, 1) * 255).round().astype("uint8")).save(path)

    rng = np.random.default_rng(seed)
    for i in range(train):
        save(scene(rng), root / "A" / f"{i:02d}.png")
        save(mapping(scene(rng)), root / "B" / f"{i:02d}.png")
    for i in range(test):
        a = scene(rng)
        save(a, root / "testA" / f"{i:02d}.png")
        save(mapping(a), root / "truth" / f"{i:02d}.png")
    return {k: root / k for k in ("A", "B", "testA", "truth")}


def cli(*args: str, cwd: Path | None = None, input: str | None = None,
        timeout: float = 240) -> subprocess.CompletedProcess:
    """Run `python -m cyclestudio ARGS` in a fresh process."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "cyclestudio", *args], cwd=cwd, input=input,
        capture_output=True, text=True, timeout=timeout, env=env,
    )


def visible(folder: Path, recursive: bool = False) -> list[Path]:
    """The files a person sees in an output folder (not its hidden manifest), sorted."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if not p.name.startswith("."))


def events(stdout: str) -> list[dict]:
    """Parse a job's JSON-lines stdout."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def metrics(run: Path, key: str = "losses") -> list[dict]:
    """The run's metrics.jsonl lines that hold ``key`` (losses, or validation figures)."""
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if key in line]


def package_modules(folder: Path, package: str) -> list[str]:
    """Every importable module under ``folder`` (a package named ``package``), sorted."""
    names = []
    for path in folder.rglob("*.py"):
        parts = path.relative_to(folder).with_suffix("").parts
        if parts[-1] == "__main__":  # running it is not importing it
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join((package, *parts)))
    return sorted(names)


class Watch:
    """A `cyclestudio watch ... --events` process and the events it has sent."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cyclestudio", "watch", *args, "--events"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.seen = []

    def until(self, predicate, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            event = json.loads(line)
            self.seen.append(event)
            if predicate(event):
                return event
        raise AssertionError(f"not seen; got {self.seen}; stderr: {self.proc.stderr.read()}")

    def send(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def stop(self):
        self.send("stop")
        stopped = self.until(lambda e: e["event"] == "stopped")
        assert self.proc.wait(30) == 0
        return stopped
