"""A burst of files into a watched folder: each translated exactly once, and how fast.

    python benchmarks/watch_burst.py [--files 500] [--size 64] [--model demo|tiny] [--poll]

Starts the real ``cyclestudio watch MODEL --in IN --out OUT --events`` and, once it has
started, copies ``--files`` PNGs into IN as fast as one process can (each written and
closed; the time of the close is when the file is complete). Reads the watch's events
and reports, per file, the latency from complete (closed) to written (its ``file``
event): median, 95th percentile and worst, the burst's total time, and whether every
file was translated exactly once (one ``translated`` event each, one output each).
Then ``--singles`` files arrive one at a time into the idle watch: the latency without
a backlog.
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
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--model", choices=("demo", "tiny"), default="tiny")
    parser.add_argument("--poll", action="store_true", help="watch by polling (--settle 2)")
    parser.add_argument("--singles", type=int, default=20,
                        help="files copied in one at a time after the burst")
    args = parser.parse_args()

    from translate_many import make_inputs, model_path

    work = Path(tempfile.mkdtemp(prefix="cyclestudio-burst-"))
    sources = Path(tempfile.gettempdir()) / f"cyclestudio-many-{args.files}-{args.size}"
    make_inputs(sources, args.files, args.size)
    files = sorted(sources.rglob("*.png"))
    model = model_path(args.model, work)
    inbox, out = work / "in", work / "out"
    inbox.mkdir()
    command = [sys.executable, "-m", "cyclestudio", "watch", str(model), "--in", str(inbox),
               "--out", str(out), "--device", "cpu", "--events",
               *(["--poll", "--interval", "0.5"] if args.poll else [])]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONUNBUFFERED": "1"}
    watch = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=env)
    written: dict[str, list[tuple[float, dict]]] = {}
    started = threading.Event()
    ended = threading.Event()

    def read() -> None:
        assert watch.stdout is not None
        for line in watch.stdout:
            event = json.loads(line)
            if event["event"] == "started":
                started.set()
            elif event["event"] == "file":
                written.setdefault(Path(event["input"]).name, []).append(
                    (time.perf_counter(), event))
            elif event["event"] in ("stopped", "error"):
                print(f"watch ended: {event}")
                break
        ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not started.wait(120):
        watch.kill()
        raise SystemExit("the watch did not start")
    print(f"watching ({'polling' if args.poll else 'notifications'}); copying {len(files)} "
          f"{args.size}² PNGs in; load {os.getloadavg()[0]:.1f}", flush=True)
    complete: dict[str, float] = {}
    burst_start = time.perf_counter()
    for f in files:
        shutil.copyfile(f, inbox / f.name)  # written and closed
        complete[f.name] = time.perf_counter()
    burst = time.perf_counter() - burst_start
    deadline = time.time() + 600
    while len(written) < len(files) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # anything reported twice would arrive now
    last = max((t for events in written.values() for t, _ in events), default=burst_start)
    # Then single files into the idle watch, one every 0.6 s: latency without a backlog.
    single: list[float] = []
    for i, f in enumerate(files[:args.singles]):
        name = f"single_{i:03d}.png"
        shutil.copyfile(f, inbox / name)
        closed = time.perf_counter()
        while name not in written and time.perf_counter() - closed < 60:
            time.sleep(0.005)
        if name in written:
            single.append(written.pop(name)[0][0] - closed)
        time.sleep(0.6)
    assert watch.stdin is not None
    watch.stdin.write("stop\n")
    watch.stdin.flush()
    ended.wait(60)
    watch.wait(60)

    once = all(len(events) == 1 and events[0][1]["status"] == "translated"
               for events in written.values()) and len(written) == len(files)
    outputs = sum(1 for p in out.rglob("*.png") if "failed" not in p.parts)
    latencies = sorted(events[0][0] - complete[name] for name, events in written.items()
                       if name in complete)
    print(f"copied in {burst:.2f} s; all written {last - burst_start:.1f} s after the burst "
          f"began ({len(files) / (last - burst_start):.0f} files/s)")
    print(f"exactly once: {once} ({len(written)} inputs reported, "
          f"{sum(len(e) for e in written.values())} reports, {outputs} outputs)")
    if latencies:
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        print(f"burst latency complete → written: median {statistics.median(latencies):.2f} s, "
              f"95th percentile {p95:.2f} s, worst {latencies[-1]:.2f} s; load "
              f"{os.getloadavg()[0]:.1f}")
    if single:
        print(f"one file at a time ({len(single)}): median {statistics.median(single):.2f} s, "
              f"worst {max(single):.2f} s")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if once and outputs == len(files) else 1


if __name__ == "__main__":
    sys.exit(main())
