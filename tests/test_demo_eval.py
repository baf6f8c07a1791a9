"""The demo project is made here, deterministically, and eval scores against its known truth."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from model_helpers import make_run
from PIL import Image

from cyclestudio.cli import main
from cyclestudio.core import demo
from cyclestudio.core.metrics import psnr, ssim
from cyclestudio.project import Project


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*.png")):
        h.update(f.relative_to(folder).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_demo_command_creates_a_ready_project(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "demo")]) == 0
    project = Project.load(tmp_path / "demo")
    assert (project.a.name, project.b.name) == ("day", "dusk")
    a_dir, b_dir = project.resolve(project.a.paths[0]), project.resolve(project.b.paths[0])
    assert not Path(project.a.paths[0]).is_absolute()  # the folder can move
    assert len(list(a_dir.glob("*.png"))) == demo.TRAIN_IMAGES
    assert len(list(b_dir.glob("*.png"))) == demo.TRAIN_IMAGES
    with Image.open(next(a_dir.glob("*.png"))) as im:
        assert im.size == (demo.SIZE, demo.SIZE)
    assert "cyclestudio eval" in capsys.readouterr().out
    assert main(["demo", str(tmp_path / "demo")]) == 2  # never over an existing project


def test_demo_data_is_the_same_on_every_machine_and_the_truth_is_the_known_mapping(tmp_path):
    first = demo.make_demo_data(tmp_path / "one", train=5, test=3)
    demo.make_demo_data(tmp_path / "two", train=5, test=3)
    assert digest(tmp_path / "one") == digest(tmp_path / "two")
    a = np.asarray(Image.open(first["testA"] / "0000.png"), dtype=np.float64) / 255
    truth = np.asarray(Image.open(first["testA_truth"] / "0000.png"), dtype=np.float64) / 255
    assert psnr(np.rint(demo.dusk(a) * 255) / 255, truth) > 40
    assert psnr(a, truth) < 25  # the mapping changes the images a lot
    x = np.random.default_rng(0).random((8, 8, 3))
    assert np.allclose(demo.day(demo.dusk(x)), x)


def test_psnr_and_ssim_behave():
    rng = np.random.default_rng(0)
    x = rng.random((32, 32, 3))
    assert psnr(x, x) == float("inf") and ssim(x, x) == pytest.approx(1.0)
    noisy = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    assert 18 < psnr(noisy, x) < 22
    assert ssim(noisy, x) < ssim(np.clip(x + rng.normal(0, 0.01, x.shape), 0, 1), x) < 1
    assert psnr(np.zeros((4, 4)), np.full((4, 4), 0.1)) == pytest.approx(20.0)


def test_eval_prints_scores_next_to_the_untranslated_inputs(tmp_path, capsys):
    roles = demo.make_demo_data(tmp_path / "data", train=0, test=4)
    run = make_run(tmp_path / "run")
    assert main(["eval", str(run), "--a", str(roles["testA"]), "--truth",
                 str(roles["testA_truth"]), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 4
    for key in ("psnr", "ssim", "psnr_input", "ssim_input"):
        assert isinstance(result[key], float)
    # The untranslated figures are exactly the known distance between input and truth.
    a = [np.asarray(Image.open(p), dtype=np.float64) / 255
         for p in sorted(roles["testA"].glob("*.png"))]
    t = [np.asarray(Image.open(p), dtype=np.float64) / 255
         for p in sorted(roles["testA_truth"].glob("*.png"))]
    expected = np.mean([psnr(x, y) for x, y in zip(a, t, strict=True)])
    assert result["psnr_input"] == pytest.approx(expected, abs=1e-3)
    assert main(["eval", str(run), "--a", str(roles["testA"]), "--truth",
                 str(roles["testA_truth"])]) == 0
    out = capsys.readouterr().out
    assert "translated" in out and "untranslated" in out and "horse → zebra" in out


def test_eval_needs_matching_ground_truth(tmp_path):
    roles = demo.make_demo_data(tmp_path / "data", train=0, test=2)
    run = make_run(tmp_path / "run")
    assert main(["eval", str(run), "--a", str(roles["testA"]), "--truth", str(tmp_path)]) == 2


def test_eval_where_no_pair_can_be_scored_says_why_instead_of_crashing(tmp_path, capsys):
    a, truth = tmp_path / "a", tmp_path / "truth"
    a.mkdir()
    truth.mkdir()
    rng = np.random.default_rng(0)
    for name in ("one", "two"):
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype("uint8")).save(a / f"{name}.png")
        Image.fromarray((rng.random((16, 16, 3)) * 255).astype("uint8")).save(truth / f"{name}.png")
    run = make_run(tmp_path / "run")
    capsys.readouterr()
    assert main(["eval", str(run), "--a", str(a), "--truth", str(truth)]) == 1
    out = capsys.readouterr().out
    assert "no image could be scored" in out
    assert out.count("truth has another size") == 2
    assert main(["eval", str(run), "--a", str(a), "--truth", str(truth), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 0 and result["psnr"] is None and len(result["failed"]) == 2


def shipped_demo_scores(tmp_path: Path) -> dict[str, dict]:
    """eval's figures for the shipped demo model on all the held-out images each way."""
    model = demo.demo_model_path()
    if model is None:
        pytest.skip("resources/demo.csmodel is not built in this checkout")
    from cyclestudio.core.modelfile import load_translator
    from cyclestudio.jobs.eval import evaluate, pair_files

    roles = demo.make_demo_data(tmp_path / "data", train=0, test=demo.TEST_IMAGES)
    translator = load_translator(model, "cpu", precision="fp32")
    scores = {}
    for direction, test, truth in (("a2b", "testA", "testA_truth"),
                                   ("b2a", "testB", "testB_truth")):
        pairs, _ = pair_files(roles[test], roles[truth])
        scores[direction] = evaluate(translator, pairs, direction)
    return scores


def test_the_shipped_demo_model_is_small_and_close_to_the_true_mapping(tmp_path):
    model = demo.demo_model_path()
    if model is None:
        pytest.skip("resources/demo.csmodel is not built in this checkout")
    from cyclestudio.core.modelfile import read_info

    info = read_info(model)
    assert (info.a_name, info.b_name) == (demo.A_NAME, demo.B_NAME)
    assert model.stat().st_size < 8_000_000
    # All 40 held-out images each way, as the README reports them. Measured
    # (resources/make_demo_model.py, the fast preset): 40.50 dB day → dusk and 37.62 dB
    # dusk → day, against 13.74 / 13.70 dB for the untranslated inputs (the model before,
    # without the colour start: 35.41 / 32.21; with --ema-ramp 9 as well: 35.23 / 31.83).
    # Issue 9 asks for 32 dB both ways.
    scores = shipped_demo_scores(tmp_path)
    assert scores["a2b"]["psnr"] >= 40, scores
    assert scores["b2a"]["psnr"] >= 37, scores
    for result in scores.values():  # sharper than a smear: more structure than the input
        assert result["ssim"] > result["ssim_input"], scores


def test_runs_of_the_demo_project_report_psnr_against_its_truth_while_training(tmp_path):
    from helpers import TINY, cli, events

    folder = demo.create_demo_project(tmp_path / "demo", train=6, test=3)
    project = Project.load(folder)
    flags = project.validation_arguments()
    assert flags[::2] == ["--val-a", "--val-truth", "--val-b", "--val-b-truth"]
    assert all(Path(p).is_absolute() and Path(p).is_dir() for p in flags[1::2])
    a, b = (str(project.resolve(d.paths[0])) for d in (project.a, project.b))
    done = cli("train", "--a", a, "--b", b, "--out", str(tmp_path / "run"), *TINY, *flags,
               "--iterations", "2", "--events")
    assert done.returncode == 0, done.stderr
    figures = [e for e in events(done.stdout) if e["event"] == "validation"][-1]["figures"]
    assert {"psnr_A", "psnr_A_input", "psnr_B", "psnr_B_input"} <= set(figures)
    assert figures["psnr_A_input"] == pytest.approx(13.7, abs=1.5)  # the demo's tone curve
