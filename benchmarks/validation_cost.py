"""What validation costs a training run, measured inside the run itself.

    python benchmarks/validation_cost.py [--iterations 600] [--val-every 100]
                                         [--truth-folders] [--work DIR]

Trains the demo project (64 px, generated here) with the real `cyclestudio train` on the
defaults a user gets (the `fast` preset, loader workers, validation every 100
iterations on 8 held-out images per domain), for ``--iterations`` iterations. Each
validation pass records how long it took (``seconds`` in metrics.jsonl and in the
``validation`` event); the run's training time is the wall time from its ``started``
event to its ``finished`` event less those passes. Both are measured in the same
process at the same moments, so load from other programs slows both alike and the
ratio holds on a shared machine where comparing two whole runs does not (identical runs
differ by ±20 % there).

``--truth-folders``: validate on the demo's folders of held-out images with paired
truth (``--val-a/--val-truth/--val-b/--val-b-truth``, 40 images each, capped by
``--val-images``), which adds PSNR and SSIM to every pass.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--val-every", type=int, default=None,
                        help="passed on to train (default: train's own default)")
    parser.add_argument("--truth-folders", action="store_true")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()

    from cyclestudio.core.demo import A_NAME, B_NAME, make_demo_data

    work = args.work or Path(tempfile.mkdtemp(prefix="cyclestudio-valcost-"))
    data = make_demo_data(work / "data")
    run = work / f"run-{int(time.time())}"
    cmd = [sys.executable, "-m", "cyclestudio", "train", "--a", str(data["A"]),
           "--b", str(data["B"]), "--a-name", A_NAME, "--b-name", B_NAME, "--out", str(run),
           "--size", "64", "--iterations", str(args.iterations), "--device", "cpu",
           "--events"]
    if args.val_every is not None:
        cmd += ["--val-every", str(args.val_every)]
    if args.truth_folders:
        cmd += ["--val-a", str(data["testA"]), "--val-truth", str(data["testA_truth"]),
                "--val-b", str(data["testB"]), "--val-b-truth", str(data["testB_truth"])]
    times: dict[str, float] = {}
    passes: list[float] = []
    started_load = os.getloadavg()[0]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            kind = event.get("event")
            if kind in ("started", "finished"):
                times[kind] = time.perf_counter()
            elif kind == "validation":
                passes.append(float(event["seconds"]))
            elif kind == "error":
                print(event.get("message"), file=sys.stderr)
    if proc.returncode != 0 or len(times) != 2:
        print(f"train failed (exit {proc.returncode})", file=sys.stderr)
        return 1
    logged = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    logged_passes = [m["seconds"] for m in logged if "validation" in m]
    assert logged_passes == passes, "metrics.jsonl and the events disagree"
    total = times["finished"] - times["started"]
    validating = sum(passes)
    training = total - validating
    per_iteration = training / args.iterations
    share = validating / training
    print(f"{args.iterations} iterations in {total:.1f} s (load {started_load:.1f} → "
          f"{os.getloadavg()[0]:.1f}): {per_iteration * 1000:.0f} ms an iteration; "
          f"{len(passes)} validation passes, median {statistics.median(passes):.2f} s, "
          f"together {validating:.1f} s = {share * 100:.1f} % of the training time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
