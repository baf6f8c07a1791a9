"""Exporting for deployment: ONNX and TorchScript files that match PyTorch, run by ONNX Runtime."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY, make_domain
from PIL import Image

from cyclestudio.cli import main
from cyclestudio.exports import read_onnx_header
from cyclestudio.jobs.manifest import NAME as MANIFEST

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny run trained for a few iterations on real (generated) images."""
    root = tmp_path_factory.mktemp("export")
    a = make_domain(root / "warm", 3, "warm")
    b = make_domain(root / "cool", 3, "cool", seed=1)
    run = root / "run"
    assert main(["train", "--a", str(a), "--b", str(b), "--a-name", "warm", "--b-name", "cool",
                 "--out", str(run), *TINY, "--generator-option", "blocks=1",
                 "--iterations", "3", "--sample-every", "100", "--checkpoint-every", "100"]
                ) == 0
    return run


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> dict[str, Path]:
    """Both formats, both directions, exported from the trained run."""
    out = tmp_path_factory.mktemp("exported")
    assert main(["export", str(trained), "--format", "onnx", "--out", str(out / "w.onnx")]) == 0
    assert main(["export", str(trained), "--format", "torchscript", "--direction", "a2b",
                 "--out", str(out / "w2c")]) == 0
    return {"a2b": out / "w_a2b.onnx", "b2a": out / "w_b2a.onnx", "ts": out / "w2c.torchscript"}


def test_a_trained_run_exports_to_both_formats_with_parity_printed(trained, tmp_path, capsys):
    assert main(["export", str(trained), "--format", "onnx", "--direction", "b2a",
                 "--out", str(tmp_path / "c2w.onnx")]) == 0
    lines = capsys.readouterr().out.splitlines()
    checks = [line for line in lines if line.strip().startswith("parity b2a")]
    # random and real images (the run's own B images), at two sizes
    assert len(checks) == 4 and all(c.endswith(": ok") for c in checks)
    assert sum("real (cool_" in c for c in checks) == 2
    assert {re.search(r" (\d+×\d+):", c).group(1) for c in checks} == {"32×32", "48×32"}
    assert all("max |Δ|" in c and "PSNR" in c for c in checks)
    assert (tmp_path / "c2w.onnx").is_file()

    header = read_onnx_header(tmp_path / "c2w.onnx")
    assert (header["direction"], header["source_domain"], header["target_domain"]) == (
        "b2a", "cool", "warm")
    assert header["size_multiple"] == 4 and header["generator"] == "resnet_6blocks"
    assert header["options"]["width"] == 4 and header["input"]["range"] == [-1.0, 1.0]
    assert header["cyclestudio_version"] and header["opset"] == 17
    model = onnx.load(str(tmp_path / "c2w.onnx"))
    (image,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]  # any size, any batch
    assert {o.domain for o in model.opset_import} == {""}  # standard operators only


def test_exported_graphs_compute_what_pytorch_computes(trained, exported):
    import onnxruntime as ort
    import torch

    from cyclestudio.core.modelfile import load_model

    model = load_model(trained)
    x = torch.rand(2, 3, 36, 52) * 2 - 1  # a size neither export was traced or checked at
    with torch.no_grad():
        expected = {d: model.generator(d)(x).numpy() for d in ("a2b", "b2a")}
    for d in ("a2b", "b2a"):
        session = ort.InferenceSession(str(exported[d]), providers=["CPUExecutionProvider"])
        got = session.run(None, {"image": x.numpy()})[0]
        assert np.abs(got - expected[d]).max() < 1e-4, d
    with zipfile.ZipFile(exported["ts"]) as z:
        name = next(n for n in z.namelist() if n.endswith("extra/cyclestudio.json"))
        assert json.loads(z.read(name))["target_domain"] == "cool"
    scripted = torch.jit.load(str(exported["ts"]))
    with torch.no_grad():
        assert np.abs(scripted(x).numpy() - expected["a2b"]).max() < 1e-5


def test_a_graph_that_disagrees_with_pytorch_is_an_error_and_leaves_no_file(
        trained, tmp_path, monkeypatch, capsys):
    from cyclestudio.core import export_formats

    real = export_formats._onnx_runner

    def slightly_off(data):
        run = real(data)
        return lambda x: run(x) + 0.01  # 1.3 8-bit levels: beyond the tolerance

    monkeypatch.setattr(export_formats, "_onnx_runner", slightly_off)
    assert main(["export", str(trained), "--format", "onnx", "--out",
                 str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "does not match PyTorch" in err and "nothing was written" in err
    assert list(tmp_path.iterdir()) == []  # not the first direction, no temp file either


def _odd_files(folder: Path) -> None:
    folder.mkdir()
    rng = np.random.default_rng(5)
    Image.fromarray((rng.random((37, 23)) * 255).astype(np.uint8)).save(folder / "grey.png")
    rgba = (rng.random((29, 41, 4)) * 255).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(folder / "logo.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 50 wide and 18 high, shown rotated: 18 wide, 50 high
    Image.fromarray((rng.random((18, 50, 3)) * 255).astype(np.uint8)).save(
        folder / "phone.jpg", exif=exif.tobytes())
    deep = (rng.random((33, 21)) * 65535).astype(np.uint16)
    Image.fromarray(deep).save(folder / "deep.png")
    Image.fromarray(rgba[:, :, ::3].copy(), "LA").save(folder / "grey_alpha.png")


def _outputs(folder):
    """The translated files in an output folder (not its manifest)."""
    return sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)


def test_an_onnx_model_translates_odd_files_at_their_own_size_like_pytorch(
        trained, exported, tmp_path):
    src = tmp_path / "in"
    _odd_files(src)
    assert main(["translate", str(exported["a2b"]), str(src), "--out", str(tmp_path / "ort")]
                ) == 0
    assert main(["translate", str(trained), str(src), "--out", str(tmp_path / "torch"),
                 "--precision", "fp32", "--backend", "torch"]) == 0
    names = _outputs(tmp_path / "ort")
    assert names == ["deep_cool.png", "grey_alpha_cool.png", "grey_cool.png", "logo_cool.png",
                     "phone_cool.jpg"]
    assert names == _outputs(tmp_path / "torch")
    sizes = {"deep": (21, 33), "grey_alpha": (41, 29), "grey": (23, 37), "logo": (41, 29),
             "phone": (18, 50)}
    for name in names:
        ours, theirs = Image.open(tmp_path / "ort" / name), Image.open(tmp_path / "torch" / name)
        assert ours.size == sizes[name.rsplit("_", 1)[0]] == theirs.size, name
        assert ours.mode == theirs.mode, name
        if name.endswith(".png"):  # lossless: the same pixels to within one level
            diff = np.abs(np.asarray(ours, np.int32) - np.asarray(theirs, np.int32))
            assert diff.max() <= 1, name
    alpha = np.asarray(Image.open(src / "logo.png"))[:, :, 3]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "ort" / "logo_cool.png"))[:, :, 3],
                          alpha)
    la = Image.open(tmp_path / "ort" / "grey_alpha_cool.png").getchannel("A")
    assert np.array_equal(np.asarray(la), alpha)


def test_tiled_onnx_shares_norm_statistics_exactly_as_tiled_pytorch(trained, exported):
    from cyclestudio.core.modelfile import load_translator

    torch_path = load_translator(trained, "cpu", precision="fp32")
    ort_path = load_translator(exported["a2b"], "cpu")
    yy, xx = np.mgrid[0:150, 0:190]
    image = np.stack([128 + 100 * np.sin(xx / 20), 128 + 100 * np.cos(yy / 15),
                      128 + 60 * np.sin((xx + yy) / 30)], 2).astype(np.uint8)
    assert ort_path.plan(150, 190, 64).count == 12
    tiled = ort_path.translate(image, tile=64, batch_size=3)
    assert np.abs(tiled - torch_path.translate(image, tile=64, batch_size=3)).max() < 1e-4
    # Without the shared statistics the tiles would differ: the apply graph really ran.
    native = np.concatenate([ort_path.translate(image[:, :96], tile=None),
                             ort_path.translate(image[:, 96:], tile=None)], axis=1)
    assert np.abs(native - tiled).max() > 1e-2
    assert ("a2b", "apply") in ort_path._sessions


def test_a_csmodel_runs_in_onnx_runtime_when_asked(trained, tmp_path):
    from cyclestudio.core.modelfile import load_translator

    image = (np.random.default_rng(1).random((30, 42, 3)) * 255).astype(np.uint8)
    via_ort = load_translator(trained, "cpu", backend="onnxruntime").translate(image, "b2a")
    via_torch = load_translator(trained, "cpu", precision="fp32").translate(image, "b2a")
    assert np.abs(via_ort - via_torch).max() < 1e-4
    from cyclestudio.paths import cache_dir

    (cached,) = (cache_dir() / "onnx").iterdir()  # the next job starts without exporting
    again = load_translator(trained, "cpu", backend="onnxruntime")
    assert again.translate(image, "b2a").tobytes() == via_ort.tobytes()
    assert len(list((cache_dir() / "onnx").iterdir())) == 1


def test_a_changed_or_foreign_onnx_file_is_refused_with_a_clear_message(
        exported, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(src / "x.png")
    data = exported["a2b"].read_bytes()
    model = onnx.load_from_string(data)
    weights = max(model.graph.initializer, key=lambda t: len(t.raw_data)).raw_data
    at = data.index(weights) + 8
    tampered = bytearray(data)
    tampered[at] ^= 0x40  # one weight, one bit
    (tmp_path / "tampered.onnx").write_bytes(bytes(tampered))
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "foreign.onnx"))
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    expected = {"tampered.onnx": "was changed after it was exported",
                "foreign.onnx": "is not a cyclestudio export",
                "cut.onnx": "is not a readable ONNX file"}
    for name, message in expected.items():
        assert main(["translate", str(tmp_path / name), str(src), "--out",
                     str(tmp_path / "out")]) == 2, name
        err = capsys.readouterr().err
        assert message in err and "hint:" in err and "Traceback" not in err, (name, err)
    assert not (tmp_path / "out").exists()


def test_a_missing_onnx_runtime_is_named_with_the_install_command(exported, tmp_path,
                                                                  monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    assert main(["translate", str(exported["a2b"]), str(tmp_path), "--out",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "ONNX Runtime" in err and 'pip install "cyclestudio[onnx]"' in err


def test_an_architecture_onnx_cannot_express_names_the_plugin_and_the_operation(
        tmp_path, monkeypatch, capsys):
    from model_helpers import make_run

    from cyclestudio.plugins import discovery

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "erf_generator.py").write_text(
        "import torch\nfrom torch import nn\n"
        "from cyclestudio.plugins import GeneratorSpec, Option, hookimpl\n\n"
        "class Erf(nn.Module):\n"
        "    def __init__(self, i, o, width):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(i, o, 3, padding=1)\n"
        "    def forward(self, x):\n"
        "        return torch.tanh(torch.special.erfinv(torch.tanh(self.conv(x)) * 0.9))\n\n"
        "@hookimpl\n"
        "def generators():\n"
        "    return [GeneratorSpec(name='erf_net', title='Erf', build=Erf,\n"
        "                          options=[Option('width', int, 4, 'unused')])]\n")
    monkeypatch.setenv(discovery.PLUGIN_PATH_ENV, str(plugins))
    monkeypatch.setattr(discovery, "_cached", None)
    run = make_run(tmp_path / "run", generator="erf_net", options={"width": 4})
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "e.onnx")]
                ) == 2
    err = capsys.readouterr().err
    assert "'erf_net'" in err and "erf_generator.py" in err, err
    assert "aten::erfinv" in err and "opset 17" in err, err
    assert "Torch IR graph" not in err and "Traceback" not in err
    assert not (tmp_path / "e.onnx").exists()
    monkeypatch.setattr(discovery, "_cached", None)


def test_watch_runs_an_onnx_model(exported, tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    Image.fromarray(np.full((26, 34, 3), 90, np.uint8)).save(inbox / "first.png")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cyclestudio", "watch", str(exported["b2a"]), "--in", str(inbox),
         "--out", str(out), "--events"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        seen = []
        deadline = time.time() + 90
        while time.time() < deadline:
            event = json.loads(proc.stdout.readline())
            seen.append(event)
            if event["event"] == "file":
                break
        assert seen[0]["event"] == "started" and seen[0]["model"].endswith("w_b2a.onnx")
        assert seen[0]["backend"] == "onnxruntime"
        assert seen[-1]["status"] == "translated", (seen, proc.stderr.read())
        assert Image.open(out / "first_warm.png").size == (34, 26)  # b2a: cool → warm
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        assert proc.wait(30) == 0
    finally:
        proc.kill()


def test_onnx_runtime_running_out_of_memory_splits_the_batch(exported):
    from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException

    from cyclestudio.core.modelfile import load_translator

    translator = load_translator(exported["a2b"], "cpu")
    real, batches = translator._session_run, []

    def short_of_memory(direction, feed):
        batches.append(feed["image"].shape[0])
        if batches[-1] > 1:
            raise RuntimeException("Failed to allocate memory for requested buffer of size 9")
        return real(direction, feed)

    translator._session_run = short_of_memory
    rng = np.random.default_rng(3)
    images = [(rng.random((24, 28, 3)) * 255).astype(np.uint8) for _ in range(2)]
    together = translator.translate_batch(images)
    assert batches == [2, 1, 1]
    for image, result in zip(images, together, strict=True):
        assert np.array_equal(translator.translate(image), result)
