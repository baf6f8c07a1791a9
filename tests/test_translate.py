"""`cyclestudio translate`: any size and mode in, the same size out, bad files named and skipped."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import visible
from model_helpers import make_run
from PIL import Image, ImageCms

from cyclestudio.cli import main
from cyclestudio.core.modelfile import export_model, load_translator


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return export_model(make_run(tmp_path_factory.mktemp("run") / "run"))


def noise(h: int, w: int, c: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (h, w, c) if c > 1 else (h, w)
    return (rng.random(shape) * 255).astype(np.uint8)


def translate(model: Path, *args: str) -> int:
    return main(["translate", str(model), *args, "--precision", "fp32"])


def test_output_has_the_inputs_exact_size_for_odd_sizes(model, tmp_path):
    for w, h in ((173, 301), (1, 9), (97, 33)):
        Image.fromarray(noise(h, w)).save(tmp_path / f"in_{w}x{h}.png")
    assert translate(model, str(tmp_path / "in_173x301.png"), str(tmp_path / "in_1x9.png"),
                     str(tmp_path / "in_97x33.png"), "--out", str(tmp_path / "out")) == 0
    for w, h in ((173, 301), (1, 9), (97, 33)):
        assert Image.open(tmp_path / "out" / f"in_{w}x{h}_zebra.png").size == (w, h)


def test_exif_rotated_input_comes_out_upright(model, tmp_path):
    pixels = noise(20, 40)  # stored 40 wide, 20 high; orientation 6 means "rotate 90° CW"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(tmp_path / "phone.png", exif=exif.tobytes())
    assert translate(model, str(tmp_path / "phone.png"), "--out", str(tmp_path / "out")) == 0
    out = Image.open(tmp_path / "out" / "phone_zebra.png")
    assert out.size == (20, 40)
    assert out.getexif().get(0x0112, 1) == 1  # no second rotation by viewers
    upright = np.asarray(Image.fromarray(pixels).transpose(Image.Transpose.ROTATE_270))
    expected = load_translator(model, "cpu", precision="fp32").translate(upright)
    assert np.array_equal(np.asarray(out), np.rint(expected * 255).astype(np.uint8))


def test_rgba_keeps_its_alpha_untouched(model, tmp_path):
    rgba = noise(30, 45, 4, seed=3)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "logo.png")
    Image.fromarray(rgba[:, :, ::3].copy(), "LA").save(tmp_path / "grey_alpha.png")
    assert translate(model, str(tmp_path / "logo.png"), str(tmp_path / "grey_alpha.png"),
                     "--out", str(tmp_path / "out")) == 0
    out = Image.open(tmp_path / "out" / "logo_zebra.png")
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[:, :, 3], rgba[:, :, 3])
    assert not np.array_equal(np.asarray(out)[:, :, :3], rgba[:, :, :3])
    la = Image.open(tmp_path / "out" / "grey_alpha_zebra.png")
    assert np.array_equal(np.asarray(la.getchannel("A")), rgba[:, :, 3])


def test_greyscale_palette_cmyk_and_16_bit_inputs_translate(model, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(noise(33, 21, 1)).save(src / "grey.png")
    Image.fromarray(noise(33, 21)).convert("P").save(src / "palette.gif")
    Image.fromarray(noise(33, 21)).convert("P").save(src / "palette_t.png", transparency=0)
    Image.fromarray(noise(33, 21)).convert("CMYK").save(src / "print.jpg")
    Image.fromarray(noise(33, 21)).convert("CMYK").save(src / "print.tif")
    deep = (np.random.default_rng(2).random((33, 21)) * 65535).astype(np.uint16)
    Image.fromarray(deep).save(src / "deep.png")
    Image.fromarray(deep).save(src / "deep.tif")
    Image.fromarray(noise(33, 21, 1)).convert("1").save(src / "bilevel.png")
    assert translate(model, str(src), "--out", str(tmp_path / "out")) == 0
    outs = [p.name for p in visible(tmp_path / "out")]
    assert outs == ["bilevel_zebra.png", "deep_zebra.png", "deep_zebra.tif", "grey_zebra.png",
                    "palette_t_zebra.png", "palette_zebra.png", "print_zebra.jpg",
                    "print_zebra.tif"]
    for name in outs:
        with Image.open(tmp_path / "out" / name) as im:
            assert im.size == (21, 33)
            assert im.mode in ("RGB", "RGBA")
    assert Image.open(tmp_path / "out" / "palette_t_zebra.png").mode == "RGBA"


def test_the_16_bit_grey_values_reach_the_network_at_full_precision(model, tmp_path):
    import torch

    from cyclestudio.jobs.translate import Item, Settings, translate_items

    deep = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16  # 4096 grey levels
    Image.fromarray(deep).save(tmp_path / "deep.png")
    translator = load_translator(model, "cpu", precision="fp32")
    inputs: list = []
    translator.model.generator("a2b").register_forward_pre_hook(
        lambda _net, args: inputs.append(args[0].clone()))
    outcomes: list = []
    translate_items(translator, [Item(tmp_path / "deep.png", tmp_path / "out.png")],
                    Settings(batch_size=1), outcomes.append)
    assert [o.status for o in outcomes] == ["translated"]
    (x,) = inputs  # what the generator was given, in [-1, 1]
    assert x.shape == (1, 3, 64, 64) and x.dtype == torch.float32
    expected = torch.from_numpy(deep.astype(np.float64) / 65535 * 2 - 1).float()
    for channel in x[0]:
        assert torch.allclose(channel, expected, atol=1e-6)
    assert len(torch.unique(x)) == 64 * 64  # not the 256 levels of an 8-bit detour


def _bomb(path: Path) -> None:
    """A tiny PNG whose header claims 40000×40000 pixels."""
    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
    data += struct.pack(">I", zlib.crc32(chunk))
    idat = b"IDAT" + zlib.compress(b"\x00" * 1000)
    data += struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))
    path.write_bytes(data)


@pytest.fixture
def open_stdin(monkeypatch):
    """A stdin that stays open (as the app's pipe does) for jobs run with --events."""
    read, write = os.pipe()
    with os.fdopen(read) as reader:
        monkeypatch.setattr("sys.stdin", reader)
        yield
        os.close(write)


def test_bad_files_are_named_with_their_reason_and_the_rest_is_written(
    model, tmp_path, capsys, open_stdin
):
    src = tmp_path / "in"
    (src / "deeper").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(noise(24, 32, seed=i)).save(src / f"good{i}.png")
    Image.fromarray(noise(24, 32)).save(src / "deeper" / "good.jpg")
    (src / "empty.png").write_bytes(b"")
    (src / "text.jpg").write_text("this is not an image")
    whole = (src / "good0.png").read_bytes()
    (src / "truncated.png").write_bytes(whole[: len(whole) // 2])
    _bomb(src / "bomb.png")
    (src / "Thumbs.db").write_bytes(b"junk")
    (src / ".DS_Store").write_bytes(b"junk")
    locked = src / "locked.png"
    Image.fromarray(noise(24, 32)).save(locked)
    locked.chmod(0)
    can_lock = os.geteuid() != 0  # root reads anything
    capsys.readouterr()
    code = translate(model, str(src), "--out", str(tmp_path / "out"), "--events")
    locked.chmod(0o644)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1  # some failed
    assert all(line["schema"] == 1 for line in lines)
    files = {Path(e["input"]).name: e for e in lines if e["event"] == "file"}
    assert "Thumbs.db" not in files and ".DS_Store" not in files
    assert files["empty.png"]["reason"] == "empty file"
    assert "not an image" in files["text.jpg"]["reason"]
    assert "truncated" in files["truncated.png"]["reason"]
    assert "too large" in files["bomb.png"]["reason"]
    if can_lock:
        assert "permission" in files["locked.png"]["reason"]
    for name in ("empty.png", "text.jpg", "truncated.png", "bomb.png"):
        assert files[name]["status"] == "failed" and files[name]["output"] is None
    for name in ("good0.png", "good1.png", "good2.png", "good.jpg"):
        assert files[name]["status"] == "translated"
        assert Path(files[name]["output"]).is_file()
    assert (tmp_path / "out" / "deeper" / "good_zebra.jpg").is_file()  # the tree is mirrored
    assert lines[0]["event"] == "started" and lines[-1]["event"] == "finished"
    failed = 4 + (1 if can_lock else 0)
    assert lines[-1]["failed"] == failed and lines[-1]["translated"] == 9 - failed
    progress = [e for e in lines if e["event"] == "progress"]
    assert progress[-1]["done"] == progress[-1]["total"] == 9
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.endswith(".tmp")]


def test_a_translation_whose_app_has_gone_stops_and_leaves_only_whole_files(model, tmp_path):
    # The app reads our events; when it is killed its end of the pipe closes. The job
    # must notice at its next event and stop, not go on converting a whole folder.
    import subprocess
    import sys

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    count = 24
    for i in range(count):
        Image.fromarray(noise(128, 128, seed=i)).save(src / f"{i:02d}.png")
    job = subprocess.Popen(
        [sys.executable, "-m", "cyclestudio", "translate", str(model), str(src), "--out",
         str(out), "--events", "--device", "cpu", "--precision", "fp32", "--compile", "off"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # Buffered stdout, as under `... --events | head`: the unsent bytes must not fail
        # again at exit.
        env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"})
    try:
        while json.loads(job.stdout.readline())["event"] != "file":
            pass
        job.stdout.close()  # the app is gone (its stdin to us stays open, as after a crash)
        code = job.wait(120)
        stderr = job.stderr.read()
    finally:
        job.kill()
        job.stdin.close()
        job.stderr.close()
    written = visible(out, recursive=True)
    assert 1 <= len(written) < count, "it went on translating for nobody"
    assert not [p for p in written if p.name.endswith(".tmp") or p.name.startswith(".")]
    for path in written:
        with Image.open(path) as im:
            im.load()  # complete files only
    assert code == 0 and "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_inputs_are_never_overwritten_and_outputs_only_when_asked(model, tmp_path, capsys):
    Image.fromarray(noise(16, 16)).save(tmp_path / "cat.png")
    before = (tmp_path / "cat.png").read_bytes()
    assert translate(model, str(tmp_path), "--out", str(tmp_path), "--suffix", "") == 2
    assert "is the input folder itself" in capsys.readouterr().err
    assert translate(model, str(tmp_path / "cat.png"), "--out", str(tmp_path),
                     "--suffix", "") == 0
    assert (tmp_path / "cat.png").read_bytes() == before
    assert "would overwrite an input" in capsys.readouterr().out
    out = tmp_path / "out"
    assert translate(model, str(tmp_path / "cat.png"), "--out", str(out)) == 0
    (out / "cat_zebra.png").write_bytes(b"keep me")
    assert translate(model, str(tmp_path / "cat.png"), "--out", str(out)) == 0
    assert (out / "cat_zebra.png").read_bytes() == b"keep me"
    assert "output exists" in capsys.readouterr().out
    assert translate(model, str(tmp_path / "cat.png"), "--out", str(out), "--overwrite") == 0
    assert Image.open(out / "cat_zebra.png").size == (16, 16)


def test_formats_quality_suffix_and_direction(model, tmp_path):
    Image.fromarray(noise(20, 28)).save(tmp_path / "a.png")
    for fmt, ext, pil in (("jpg", ".jpg", "JPEG"), ("webp", ".webp", "WEBP"),
                          ("tiff", ".tif", "TIFF"), ("png", ".png", "PNG")):
        assert translate(model, str(tmp_path / "a.png"), "--out", str(tmp_path / "o"),
                         "--format", fmt, "--quality", "80", "--suffix=-x",
                         "--direction", "b2a") == 0
        with Image.open(tmp_path / "o" / f"a-x{ext}") as im:
            assert im.format == pil and im.size == (28, 20)
    assert translate(model, str(tmp_path / "a.png"), "--out", str(tmp_path / "p"),
                     "--direction", "b2a") == 0
    assert (tmp_path / "p" / "a_horse.png").is_file()


def test_icc_profile_and_exif_are_kept(model, tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "ACME Camera"
    Image.fromarray(noise(24, 24)).save(tmp_path / "shot.jpg", icc_profile=icc,
                                         exif=exif.tobytes())
    for fmt in ("same", "png", "webp", "tiff"):
        out = tmp_path / fmt
        assert translate(model, str(tmp_path / "shot.jpg"), "--out", str(out),
                         "--format", fmt) == 0
        (written,) = visible(out)
        with Image.open(written) as im:
            assert im.info.get("icc_profile") == icc, fmt
            assert im.getexif().get(0x010F) == "ACME Camera", fmt


def test_tiled_output_matches_whole_image_output(model, tmp_path):
    translator = load_translator(model, "cpu", precision="fp32")
    yy, xx = np.mgrid[0:201, 0:263]
    image = np.stack([128 + 100 * np.sin(xx / 20), 128 + 100 * np.cos(yy / 15),
                      128 + 60 * np.sin((xx + yy) / 30)], 2).astype(np.uint8)
    whole = translator.translate(image, tile=None)
    plan = translator.plan(201, 263, 128)
    assert plan is not None and plan.count > 1
    tiled = translator.translate(image, tile=128, batch_size=3)
    assert tiled.shape == whole.shape
    mse = float(np.mean((tiled - whole) ** 2))
    assert 10 * np.log10(1 / mse) > 45
    assert np.abs(tiled - whole).max() < 0.15


def test_auto_tiling_kicks_in_when_memory_is_short(model):
    translator = load_translator(model, "cpu", precision="fp32", memory_budget=400_000)
    assert translator.plan(64, 64, "auto") is None
    plan = translator.plan(900, 700, "auto")
    assert plan is not None and plan.tile % translator.multiple == 0
    image = noise(300, 260)
    out = translator.translate(image)
    assert out.shape == (300, 260, 3)


def test_batched_images_match_one_at_a_time(model):
    translator = load_translator(model, "cpu", precision="fp32")
    images = [noise(36, 40, seed=s) for s in range(3)]
    together = translator.translate_batch(images)
    for image, result in zip(images, together, strict=True):
        assert np.allclose(translator.translate(image), result, atol=1e-5)


def test_stop_finishes_the_file_in_hand_and_starts_no_other(model, tmp_path):
    from cyclestudio.jobs.translate import Item, Settings, translate_items

    translator = load_translator(model, "cpu")
    items = []
    for i in range(4):
        Image.fromarray(noise(16, 16, seed=i)).save(tmp_path / f"{i}.png")
        items.append(Item(tmp_path / f"{i}.png", tmp_path / "out" / f"{i}.png"))
    seen: list = []
    asked: list = []

    def stop_on_second_look() -> bool:
        asked.append(1)
        return len(asked) >= 2

    finished = translate_items(translator, items, Settings(batch_size=1), seen.append,
                               should_stop=stop_on_second_look)
    assert not finished
    assert len(seen) == 1  # the file in hand is finished and written; no further one starts
    assert seen[0].status == "translated" and seen[0].output.is_file()
    assert not (tmp_path / "out" / "1.png").exists()


def test_stop_between_files_ends_with_a_stopped_event(model, tmp_path, monkeypatch):
    import io
    import sys
    import time

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(6):  # sizes differ, as photos' do: no two are translated in one batch
        Image.fromarray(noise(24 + 4 * i, 24, seed=i)).save(src / f"{i}.png")
    read, write = os.pipe()

    class App(io.StringIO):
        """The app's end of the job's stdout: it answers the first file with `stop`."""

        def write(self, text: str) -> int:
            if '"event": "file"' in text and not self.getvalue().count('"event": "file"'):
                os.write(write, b"stop\n")
                time.sleep(0.5)  # time for the job's stdin reader to take the line
            return super().write(text)

    # A real network takes a while an image; the tests' tiny one took so little that all
    # six were translated before the first file's line reached the app (as CI saw once).
    from cyclestudio.core.translate import Translator
    real_batch = Translator.translate_batch

    def slow_batch(self, *args, **kwargs):
        time.sleep(0.3)
        return real_batch(self, *args, **kwargs)

    monkeypatch.setattr(Translator, "translate_batch", slow_batch)
    app = App()
    with os.fdopen(read) as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        monkeypatch.setattr(sys, "stdout", app)
        code = translate(model, str(src), "--out", str(out), "--events")
        os.close(write)
    lines = [json.loads(line) for line in app.getvalue().splitlines()]
    assert code == 0
    assert lines[-1]["event"] == "stopped" and "finished" not in [e["event"] for e in lines]
    files = [e for e in lines if e["event"] == "file"]
    assert lines[-1]["done"] == len(files) < 6
    assert lines[-1]["translated"] == len(files) == len(visible(out))


def test_running_out_of_memory_retries_with_smaller_tiles(model, monkeypatch):
    translator = load_translator(model, "cpu", precision="fp32")
    yy, xx = np.mgrid[0:150, 0:170]
    image = np.stack([128 + 100 * np.sin(xx / 20), 128 + 100 * np.cos(yy / 15),
                      128 + 60 * np.sin((xx + yy) / 30)], 2).astype(np.uint8)
    expected = translator.translate(image, tile=None)
    real_run = translator._run
    calls = []

    def run_with_small_memory(direction, x):
        calls.append(tuple(x.shape))
        if x.shape[-1] * x.shape[-2] * x.shape[0] > 100 * 100:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 9 GB")
        return real_run(direction, x)

    monkeypatch.setattr(translator, "_run", run_with_small_memory)
    out = translator.translate(image)
    assert out.shape == expected.shape
    assert all(h * w * n <= 100 * 100 for n, _, h, w in calls[-3:])
    # Statistics come from a downscaled copy when memory is this short: close, not equal.
    assert 10 * np.log10(1 / np.mean((out - expected) ** 2)) > 25


def test_out_of_memory_is_caught_with_what_the_oldest_supported_torch_has(model, monkeypatch):
    # torch.OutOfMemoryError arrived in torch 2.5; the floor in pyproject.toml is older.
    # There the error is torch.cuda.OutOfMemoryError (which newer torch keeps as an alias).
    import torch

    oom = torch.cuda.OutOfMemoryError
    monkeypatch.delattr(torch, "OutOfMemoryError", raising=False)
    translator = load_translator(model, "cpu", precision="fp32", memory_budget=1 << 30)
    yy, xx = np.mgrid[0:96, 0:80]
    image = np.stack([128 + 100 * np.sin(xx / 20), 128 + 100 * np.cos(yy / 15),
                      128 + 60 * np.sin((xx + yy) / 30)], 2).astype(np.uint8)
    expected = translator.translate(image, tile=None)
    real_run = translator._run

    def run_on_a_small_card(direction, x):
        if x.shape[-1] * x.shape[-2] * x.shape[0] > 64 * 64:
            raise oom("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_run(direction, x)

    monkeypatch.setattr(translator, "_run", run_on_a_small_card)
    out = translator.translate(image)
    assert out.shape == expected.shape
    assert 10 * np.log10(1 / np.mean((out - expected) ** 2)) > 25


def test_compiled_generator_gives_the_same_translation(model):
    import shutil

    if not any(shutil.which(cc) for cc in ("c++", "g++", "clang++")):
        pytest.skip("torch.compile needs a C++ compiler on CPU")
    eager = load_translator(model, "cpu", precision="fp32")
    compiled = load_translator(model, "cpu", precision="fp32", compile=True)
    images = [noise(32, 48, seed=s) for s in range(2)]
    for a, b in zip(eager.translate_batch(images), compiled.translate_batch(images), strict=True):
        assert np.allclose(a, b, atol=1e-4)
    # Really compiled: a fallback to eager would pass the comparison above unnoticed.
    assert compiled.compile_error is None
    assert compiled.compiled_images == len(images) and eager.compiled_images == 0


def test_a_generator_that_cannot_be_compiled_whole_runs_eagerly_and_says_so(model):
    import torch

    translator = load_translator(model, "cpu", precision="fp32", compile=True)
    eager = load_translator(model, "cpu", precision="fp32")
    net = translator.model.generator("a2b")
    whole = net.forward

    def forward_with_a_break(x):
        torch._dynamo.graph_break()  # as a plugin's Python-side branching would
        return whole(x)

    net.forward = forward_with_a_break
    image = noise(32, 48)
    assert np.allclose(translator.translate(image), eager.translate(image), atol=1e-5)
    assert translator.compiled_images == 0 and translator.compile_error
