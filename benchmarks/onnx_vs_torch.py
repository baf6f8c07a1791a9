"""ONNX Runtime against PyTorch on the CPU: the same images, images/s and peak memory.

    python benchmarks/onnx_vs_torch.py [--sizes 512 2048] [--repeats 3] [--width-option 64]

The ResNet-9 generator (fixed random weights) is written as a .csmodel and exported
with `cyclestudio export --format onnx`. Each measurement is a fresh child process
that loads the model with one backend and translates one generated photo-like PNG
of the given size as `cyclestudio translate` does (decode, translate with the same
automatic tiling, encode); it reports the seconds from decoding to the written file
and its own peak resident memory (ru_maxrss, torch imported in both). The median of
``--repeats`` runs is printed as a Markdown table.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def child(model: str, image: str, backend: str, out: str) -> None:
    """Translate one image with one backend; print seconds and peak memory as JSON."""
    import resource

    from cyclestudio.core.modelfile import load_translator
    from cyclestudio.jobs.translate import Item, Settings, translate_items

    translator = load_translator(Path(model), "cpu", backend=backend, precision="fp32")
    outcomes: list = []
    started = time.perf_counter()
    translate_items(translator, [Item(Path(image), Path(out))], Settings(batch_size=1),
                    outcomes.append)
    seconds = time.perf_counter() - started
    assert [o.status for o in outcomes] == ["translated"], outcomes
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tiles = translator.plan(*translator_size(image), "auto")
    print(json.dumps({"seconds": seconds, "peak_bytes": peak,
                      "tiles": tiles.count if tiles else 1}))


def translator_size(image: str) -> tuple[int, int]:
    from PIL import Image

    with Image.open(image) as im:
        return im.height, im.width


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--width-option", type=int, default=64, help="generator width")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0

    from model_helpers import make_run
    from translate_memory import make_image

    from cyclestudio.core.export_formats import export
    from cyclestudio.core.modelfile import export_model

    work = Path(tempfile.mkdtemp(prefix="cyclestudio-onnx-"))
    run = make_run(work / "run", generator="resnet_9blocks",
                   options={"width": args.width_option}, perturb=0.0)
    models = {"torch": export_model(run, work / "m.csmodel"),
              "onnxruntime": export(run, "onnx", "a2b", work / "m.onnx")[0].path}
    print(f"load average before: {os.getloadavg()[0]:.1f}", file=sys.stderr)
    rows = []
    for size in args.sizes:
        image = work / f"scene_{size}.png"
        make_image(image, size, size)
        results: dict[str, list[dict]] = {backend: [] for backend in models}
        # Alternating backends, so a change in the machine's load hits both alike.
        for i in range(args.repeats):
            for backend, model in models.items():
                result = subprocess.run(
                    [sys.executable, __file__, "--child", str(model), str(image), backend,
                     str(work / f"out_{backend}_{size}_{i}.png")],
                    capture_output=True, text=True, check=True)
                results[backend].append(json.loads(result.stdout.strip().splitlines()[-1]))
                print(f"{size}² {backend} run {i + 1}: {results[backend][-1]} "
                      f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr)
        for backend, runs in results.items():
            seconds = statistics.median(r["seconds"] for r in runs)
            peak = statistics.median(r["peak_bytes"] for r in runs)
            rows.append((size, backend, runs[0]["tiles"], 1 / seconds, seconds, peak))
    print(f"load average after: {os.getloadavg()[0]:.1f}", file=sys.stderr)
    print("| image | backend | tiles | images/s | seconds | peak memory |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size, backend, tiles, rate, seconds, peak in rows:
        print(f"| {size}² | {backend} | {tiles} | {rate:.3f} | {seconds:.1f} | "
              f"{peak / 2**20:,.0f} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
