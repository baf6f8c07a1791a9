"""Peak memory translating one very large image (8000×6000 by default) on the CPU.

    python benchmarks/translate_memory.py [--width 8000] [--height 6000] [--width-option 64]

Runs `cyclestudio translate` in a child process on a generated photo-like JPEG with
the ResNet-9 generator (fixed random weights) and reports the child's peak resident
memory (ru_maxrss), the time, the tile plan, and that the output has the input's size.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def make_image(path: Path, width: int, height: int) -> None:
    """A smooth gradient scene with grain, built in bands to keep this process small."""
    from cyclestudio.core.demo import scene

    small = Image.fromarray((scene(7, 256) * 255).astype(np.uint8))
    big = small.resize((width, height), Image.Resampling.BILINEAR)
    rng = np.random.default_rng(0)
    arr = np.asarray(big).copy()
    for y in range(0, height, 500):
        band = arr[y:y + 500].astype(np.int16) + rng.integers(-6, 7, arr[y:y + 500].shape,
                                                             dtype=np.int16)
        arr[y:y + 500] = np.clip(band, 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(path, quality=92)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=8000)
    parser.add_argument("--height", type=int, default=6000)
    parser.add_argument("--width-option", type=int, default=64, help="generator width")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()

    from model_helpers import make_run

    from cyclestudio.core.modelfile import export_model, load_translator

    work = Path(tempfile.mkdtemp(prefix="cyclestudio-mem-"))
    model = export_model(make_run(work / "run", generator="resnet_9blocks",
                                  options={"width": args.width_option}, perturb=0.0),
                         work / "m.csmodel")
    source = work / "big.jpg"
    make_image(source, args.width, args.height)
    plan = load_translator(model, "cpu", precision=args.precision).plan(
        args.height, args.width, "auto")
    print(f"{args.width}×{args.height} ({args.width * args.height / 1e6:.0f} MP), "
          f"ResNet-9 width {args.width_option}, tile plan: {plan}", flush=True)
    start = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", "cyclestudio", "translate", str(model),
                            str(source), "--out", str(work / "out"), "--device", "cpu",
                            "--precision", args.precision])
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    (out,) = (work / "out").iterdir()
    with Image.open(out) as im:
        size = im.size
    same = "same as input" if size == (args.width, args.height) else "WRONG SIZE"
    print(f"exit {code}; {seconds:.0f} s; peak RSS {peak_kb / 1024 ** 2:.2f} GiB; "
          f"output {size[0]}×{size[1]} ({same})")
    return code


if __name__ == "__main__":
    sys.exit(main())
