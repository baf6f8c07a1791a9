"""Train the shipped demo model (resources/demo.csmodel) from the demo data, reproducibly.

    python resources/make_demo_model.py [--work DIR] [--iterations N]

Makes the demo data (cyclestudio.core.demo, fixed seeds), trains with the default
preset (``fast``: a narrow ResNet-6 generator that starts at the colour change the
domains show, read from their images) on CPU with a fixed seed, at the demo's 64 px,
with the held-out test images and their truth as validation (PSNR in metrics.jsonl
while it trains), exports the model file next to this script, and prints its
`cyclestudio eval` scores against the true mapping. About 15 to 30 minutes on a shared
2-core CPU at the default length.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=HERE / "demo.csmodel")
    args = parser.parse_args()

    from cyclestudio.core.demo import A_NAME, B_NAME, TRAIN_IMAGES, make_demo_data

    work = args.work or Path(tempfile.mkdtemp(prefix="cyclestudio-demo-model-"))
    data = make_demo_data(work / "data")
    run = work / "run"
    if run.exists():
        shutil.rmtree(run)
    epochs = max(2, -(-args.iterations // TRAIN_IMAGES))
    cli = [sys.executable, "-m", "cyclestudio"]
    subprocess.run(
        cli + ["train", "--a", str(data["A"]), "--b", str(data["B"]),
               "--a-name", A_NAME, "--b-name", B_NAME, "--out", str(run),
               "--val-a", str(data["testA"]), "--val-truth", str(data["testA_truth"]),
               "--val-b", str(data["testB"]), "--val-b-truth", str(data["testB_truth"]),
               "--val-every", "250",
               "--size", "64", "--load-size", "72", "--iterations", str(args.iterations),
               "--epochs", str(epochs), "--decay-epochs", str(epochs // 2),
               "--seed", "0", "--device", "cpu", "--workers", "0",
               "--log-every", "50", "--sample-every", "200", "--checkpoint-every", "200"],
        check=True,
    )
    subprocess.run(cli + ["export", str(run), "--out", str(args.out)], check=True)
    pairs = (("a2b", "testA", "testA_truth"), ("b2a", "testB", "testB_truth"))
    for direction, test, truth in pairs:
        subprocess.run(cli + ["eval", str(args.out), "--a", str(data[test]),
                              "--truth", str(data[truth]), "--direction", direction], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
