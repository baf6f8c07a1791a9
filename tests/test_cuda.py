"""The CUDA path: skipped without a CUDA GPU (CI has none); benchmarks/gpu_check.sh runs it.

Each test is what a user with a GPU does first: train a few iterations in each
precision, resume, pause (which must give the GPU memory back), and translate a large
image in tiles, falling back to smaller tiles when memory runs out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from helpers import cli, events, make_domain, metrics
from model_helpers import make_run
from PIL import Image

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

GPU = ["--generator", "resnet_6blocks", "--generator-option", "width=16",
       "--discriminator-option", "width=16", "--size", "64", "--load-size", "72",
       "--device", "cuda"]


@pytest.fixture(scope="module")
def domains(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return (make_domain(root / "a", 8, "warm", size=72, seed=1),
            make_domain(root / "b", 8, "cool", size=72, seed=2))


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16", "auto"])
def test_training_on_the_gpu_in_each_precision_learns_and_resumes(domains, tmp_path, precision):
    a, b = domains
    run = tmp_path / "run"
    done = cli("train", "--a", str(a), "--b", str(b), "--out", str(run), *GPU,
               "--precision", precision, "--iterations", "30", "--log-every", "1", "--events")
    assert done.returncode == 0, done.stderr
    started = events(done.stdout)[0]
    assert started["device"].startswith("cuda")
    if precision != "auto":
        assert started["speed"]["precision"] == precision
    assert started["speed"]["channels_last"] and started["speed"]["fused_optimizer"]
    lines = metrics(run)
    assert all(np.isfinite(v) for m in lines for v in m["losses"].values())
    cycle = [m["losses"]["cycle_A"] for m in lines]
    assert np.mean(cycle[-5:]) < np.mean(cycle[:5])
    resumed = cli("train", "--resume", str(run), "--iterations", "35")
    assert resumed.returncode == 0, resumed.stderr
    assert metrics(run)[-1]["iteration"] == 35


def _gpu_used_by(pid: int) -> int:
    """MiB of GPU memory the process holds (nvidia-smi), 0 if none."""
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                          "--format=csv,noheader,nounits"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        p, used = (x.strip() for x in line.split(","))
        if int(p) == pid:
            return int(used)
    return 0


def test_pause_gives_the_gpu_memory_back(domains, tmp_path):
    if subprocess.run(["which", "nvidia-smi"], capture_output=True).returncode:
        pytest.skip("needs nvidia-smi to see another process's GPU memory")
    a, b = domains
    proc = subprocess.Popen(
        [sys.executable, "-m", "cyclestudio", "train", "--a", str(a), "--b", str(b), "--out",
         str(tmp_path / "run"), *GPU, "--generator-option", "width=64", "--iterations",
         "100000", "--log-every", "1", "--events"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None and proc.stdin is not None
        for line in proc.stdout:
            if json.loads(line)["event"] == "progress":
                break
        busy = _gpu_used_by(proc.pid)
        proc.stdin.write("pause\n")
        proc.stdin.flush()
        for line in proc.stdout:
            if json.loads(line)["event"] == "paused":
                break
        time.sleep(1)
        paused = _gpu_used_by(proc.pid)
        # What is left is the CUDA context itself; the networks and activations are gone.
        assert paused < busy - 100, (busy, paused)
        proc.stdin.write("resume\n")
        proc.stdin.flush()
        for line in proc.stdout:
            if json.loads(line)["event"] == "progress":
                break
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        assert proc.wait(120) == 0
    finally:
        proc.kill()


def test_a_large_image_is_tiled_on_the_gpu_and_out_of_memory_shrinks_the_tiles(tmp_path):
    from cyclestudio.core.modelfile import export_model, load_translator

    model = export_model(make_run(tmp_path / "run", options={"width": 8, "blocks": 2}))
    rng = np.random.default_rng(0)
    image = (rng.random((2500, 3000, 3)) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "big.png")
    done = cli("translate", str(model), str(tmp_path / "big.png"), "--out", str(tmp_path / "out"),
               "--device", "cuda", "--tile", "512")
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "out" / "big_zebra.png").size == (3000, 2500)

    translator = load_translator(model, "cuda", precision="fp32", memory_budget=2 << 30)
    reference = translator.translate(image, "a2b", "auto")
    # Another program takes all but 300 MB of the GPU after the translator planned for
    # 2 GB: its tiles run out of memory, and it must shrink them, not fail.
    free, _total = torch.cuda.mem_get_info()
    hog = torch.empty(max(0, free - 300 * 2**20), dtype=torch.uint8, device="cuda")
    try:
        squeezed = translator.translate(image, "a2b", "auto")
    finally:
        del hog
        torch.cuda.empty_cache()
    assert translator.memory_budget < 2 << 30, "no out-of-memory fallback happened"
    assert squeezed.shape == reference.shape
    assert float(np.abs(squeezed - reference).mean()) < 0.02
