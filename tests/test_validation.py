"""Is a run learning? Held-out figures while training, the best checkpoint, and a run that
diverges stopping where a resume can roll back to."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY, cli, events, metrics, paired_task

from cyclestudio import options
from cyclestudio.core.checkpoint import load_checkpoint
from cyclestudio.core.health import Health
from cyclestudio.core.validation import domain_distance, hold_out


def tone(x: np.ndarray) -> np.ndarray:
    """The colour task's true mapping: a per-channel curve."""
    return np.clip(0.8 * x ** np.array([1.5, 1.0, 0.7]) + np.array([0.15, 0.05, 0.0]), 0, 1)


def scene(rng: np.random.Generator, size: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = np.stack([0.3 + 0.5 * xx, 0.4 + 0.4 * yy, 0.6 - 0.3 * xx], -1)
    cx, cy, r = rng.uniform(0.3, 0.7, 2).tolist() + [rng.uniform(0.1, 0.3)]
    disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r)[..., None]
    return np.where(disc, rng.uniform(0.1, 0.9, 3), base)


@pytest.fixture(scope="module")
def colour_task(tmp_path_factory) -> dict[str, Path]:
    """Unpaired A and B (B = tone(other scenes)), held-out A with its true B."""
    return paired_task(tmp_path_factory.mktemp("task"), scene, tone, train=12, test=4)


def test_validation_figures_are_logged_shown_and_the_best_checkpoint_kept(colour_task, tmp_path):
    t = colour_task
    run = tmp_path / "run"
    done = cli("train", "--a", str(t["A"]), "--b", str(t["B"]), "--out", str(run), *TINY,
               "--iterations", "12", "--val-every", "4", "--val-a", str(t["testA"]),
               "--val-truth", str(t["truth"]), "--events")
    assert done.returncode == 0, done.stderr
    evs = events(done.stdout)
    started = evs[0]
    assert started["validation"] == {"images": {"A": 4, "B": 8}, "held_out": {"A": True,
                                     "B": False}, "truth": {"A": True, "B": False}}
    passes = [e for e in evs if e["event"] == "validation"]
    assert [e["iteration"] for e in passes] == [4, 8, 12]
    figures = passes[-1]["figures"]
    for name in ("cycle_A", "identity_A", "change_A", "swd_A", "swd_A_input", "psnr_A",
                 "psnr_A_input", "ssim_A", "cycle_B", "swd_B", "score"):
        assert np.isfinite(figures[name]), name
    assert "psnr_B" not in figures  # no truth for B
    logged = metrics(run, "validation")
    assert [m["iteration"] for m in logged] == [4, 8, 12]
    assert logged[-1]["validation"] == figures
    # What each pass cost is kept, so a user can see validation is cheap.
    assert all(m["seconds"] > 0 for m in logged)
    assert [e["seconds"] for e in passes] == [m["seconds"] for m in logged]

    best = [e for e in passes if e["best"]][-1]
    state = load_checkpoint(run / "checkpoints" / "best.pt")
    assert state["iteration"] == best["iteration"] and set(state["nets"]) == {"G_A", "G_B"}
    assert state["best_score"] == best["figures"]["score"] == best["figures"]["psnr_A"]
    exported = cli("export", str(run / "checkpoints" / "best.pt"), "--out",
                   str(tmp_path / "best.csmodel"))
    assert exported.returncode == 0, exported.stderr
    out = cli("translate", str(tmp_path / "best.csmodel"), str(t["testA"]), "--out",
              str(tmp_path / "out"))
    assert out.returncode == 0 and len(list((tmp_path / "out").glob("*.png"))) == 4


def test_the_app_plots_validation_beside_the_losses(qtbot, tmp_path):
    from cyclestudio.gui.main_window import MainWindow

    run = tmp_path / "run"
    run.mkdir()
    lines = [{"iteration": i, "losses": {"G_A": 1.0 / i}} for i in (10, 20)]
    lines += [{"iteration": i, "validation": {"swd_A": 0.3 / i, "swd_A_input": 0.4,
                                              "cycle_A": 0.1, "score": -0.3 / i}}
              for i in (10, 20)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    window = MainWindow(refresh=False)
    qtbot.addWidget(window)
    t = window.training
    with qtbot.waitSignal(t.validation_plot.loaded, timeout=10000):
        t.show_run(run)
    assert set(t.validation_plot.curves) == {"swd_A", "swd_A_input", "cycle_A"}
    assert t.validation_plot.toggles["swd_A"].isChecked()
    assert not t.validation_plot.toggles["cycle_A"].isChecked()  # one figure at a time
    assert list(t.plot.curves) == ["G_A"]
    t._events([{"event": "validation", "iteration": 30,
                "figures": {"swd_A": 0.01, "swd_A_input": 0.4, "cycle_A": 0.1, "score": 0}}])
    assert list(t.validation_plot.series["swd_A"].x) == [10, 20, 30]
    # A run with truth has 20-odd figures, one check box each: the window must still fit
    # a laptop's screen (they once made its minimum width 3,000 px).
    many = {f"{name}_{side}{suffix}": 0.5 for name in ("cycle", "identity", "change", "swd",
                                                          "corr", "psnr", "ssim")
            for side in "AB" for suffix in ("", "_input")}
    t._events([{"event": "validation", "iteration": 40, "figures": {**many, "score": 0}}])
    assert len(t.validation_plot.toggles) >= 20
    window.show()
    qtbot.wait(50)
    assert t.validation_plot.minimumSizeHint().width() < 700
    assert window.minimumSizeHint().width() < 1280, window.minimumSizeHint()
    window.close()


NAN_PLUGIN = textwrap.dedent('''
    """A generator that breaks after a while: its output turns to NaN."""
    import torch
    from torch import nn
    from cyclestudio.plugins import GeneratorSpec, hookimpl

    class Breaking(nn.Module):
        calls = 0

        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

        def forward(self, x):
            if self.training:
                Breaking.calls += 1
            y = torch.tanh(self.conv(x))
            return y * float("nan") if Breaking.calls > 40 else y

    @hookimpl
    def generators():
        return [GeneratorSpec(name="breaking", title="Breaking", size_multiple=1,
                              build=lambda in_channels, out_channels: Breaking(
                                  in_channels, out_channels))]
''')


def test_a_run_that_diverges_stops_at_its_last_good_checkpoint_and_suggests_lower_rates(
        colour_task, tmp_path, monkeypatch):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "breaking.py").write_text(NAN_PLUGIN)
    monkeypatch.setenv("CYCLESTUDIO_PLUGIN_PATH", str(plugins))
    t, run = colour_task, tmp_path / "run"
    args = ["--generator", "breaking", "--discriminator-option", "width=4", "--size", "32",
            "--load-size", "36", "--workers", "0", "--device", "cpu"]
    done = cli("train", "--a", str(t["A"]), "--b", str(t["B"]), "--out", str(run), *args,
               "--iterations", "100", "--checkpoint-every", "3", "--log-every", "1", "--events")
    assert done.returncode == 2
    error = events(done.stdout)[-1]
    assert error["event"] == "error" and error["kind"] == "diverged"
    assert "is not finite" in error["message"]
    good = error["checkpoint_iteration"]
    assert good > 0 and good % 3 == 0
    assert error["suggest"] == {"lr_g": 1e-4, "lr_d": 1e-4}
    assert f"--resume {run} --lr 0.0001 --lr-d 0.0001" in error["hint"]
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    assert state["iteration"] == good
    assert all(torch.isfinite(v).all() for net in state["nets"].values() for v in net.values())

    resumed = cli("train", "--resume", str(run), "--lr", "0.0001", "--lr-d", "0.0001",
                  "--iterations", str(good + 2), "--events")
    assert resumed.returncode == 0, resumed.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["optim"]["lr_g"] == config["optim"]["lr_d"] == 1e-4
    assert metrics(run)[-1]["iteration"] == good + 2


def test_the_paper_preset_resolves_to_the_official_recipe():
    paper = options.resolve({"preset": "paper"})
    official = {
        "generator": "resnet_9blocks", "discriminator": "patchgan", "size": 256,
        "load_size": 286, "preprocess": "resize_and_crop", "flip": True, "gan_loss": "lsgan",
        "lambda_cycle": 10.0, "lambda_identity": 0.5, "pool_size": 50, "lr_g": 2e-4,
        "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.999, "batch_size": 1, "epochs": 200,
        "decay_epochs": 100, "lr_policy": "linear", "ema": 0.0,
    }
    assert {k: paper[k] for k in official} == official
    recipe = options.preset("paper")
    assert recipe.generator_options == {} and recipe.discriminator_options == {}


def test_held_out_images_leave_training_only_when_a_domain_can_spare_them():
    many = [Path(f"{i:03d}.png") for i in range(100)]
    train, held = hold_out(many, 8)
    assert len(held) == 8 and len(train) == 92 and not set(train) & set(held)
    few = many[:30]
    train, held = hold_out(few, 8)
    assert train == few and len(held) == 8  # validated on training images instead


def test_the_domain_distance_sees_colour_and_sharpness():
    rng = np.random.default_rng(0)
    sharp = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    blurred = torch.nn.functional.avg_pool2d(sharp, 3, 1, 1)
    tinted = (sharp + 0.4).clamp(-1, 1)
    other = torch.from_numpy(rng.random((4, 3, 32, 32)).astype(np.float32)) * 2 - 1
    near = domain_distance(sharp, other)  # same kind of noise, other pixels
    assert domain_distance(blurred, other) > 2 * near
    assert domain_distance(tinted, other) > 2 * near


def test_health_notices_idle_worse_than_nothing_and_inverted_translations():
    health = Health("lsgan", warmup=0)
    calm = {"change_A": 0.1, "corr_A": 0.9, "psnr_A": 30.0, "psnr_A_input": 20.0,
            "change_B": 0.1, "corr_B": 0.9}
    for i in range(10):
        assert health.validation(i, calm) == []
    idle = {**calm, "change_A": 0.001}
    said = [w for i in range(5) for w in health.validation(10 + i, idle)]
    assert len(said) == 1 and "left its inputs almost unchanged" in said[0]
    worse = {**calm, "psnr_A": 15.0}
    said = [w for i in range(5) for w in health.validation(20 + i, worse)]
    assert len(said) == 1 and "further from the truth" in said[0]
    inverted = {**calm, "corr_B": -0.8}
    said = [w for i in range(5) for w in health.validation(30 + i, inverted)]
    assert len(said) == 1 and "inverts" in said[0] and "G_B" in said[0]


def test_health_notices_translations_drifting_from_their_domain_without_truth():
    # The blur task's sharpening, measured: it matched the input at 1.01-1.03 times the
    # untranslated images' distance and had fallen 1.3-4.3 dB under it at 1.10-1.25.
    health = Health("lsgan", warmup=0)
    calm = {"change_A": 0.02, "corr_A": 0.99, "swd_A": 0.10, "swd_A_input": 0.30,
            "change_B": 0.02, "corr_B": 0.99, "swd_B": 0.172, "swd_B_input": 0.1665}
    assert [w for i in range(10) for w in health.validation(i, calm)] == []  # 1.03: no
    drifting = {**calm, "swd_B": 0.19}
    said = [w for i in range(5) for w in health.validation(10 + i, drifting)]
    assert len(said) == 1 and "G_B" in said[0] and "further from domain A" in said[0]
    assert "0.190 against 0.167" in said[0]
    assert "closer earlier in the run" in said[0] and "earlier checkpoint" in said[0]
    # A run that has never been as close as its inputs (the paper's generators start
    # from noise) is told to train longer instead.
    health = Health("lsgan", warmup=0)
    said = [w for i in range(5) for w in health.validation(i, {**calm, "swd_B": 0.5})]
    assert len(said) == 1 and "Train longer" in said[0] and "earlier" not in said[0]
    # Where the run has truth, PSNR against it judges instead: one warning, not two.
    truth = {"psnr_B": 27.0, "psnr_B_input": 26.0}
    health = Health("lsgan", warmup=0)
    assert [w for i in range(10) for w in health.validation(i, {**drifting, **truth})] == []


def test_the_convert_page_offers_a_runs_best_checkpoint(qtbot, tmp_path):
    from cyclestudio.gui.model_list import ModelChooser
    from cyclestudio.project import Project

    project = Project.create(tmp_path / "project", a_name="day", b_name="dusk")
    run = project.folder / "runs" / "r1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "latest.pt").write_bytes(b"x")
    project.runs.append("runs/r1")
    chooser = ModelChooser()
    qtbot.addWidget(chooser)
    chooser.refresh(project)
    titles = [chooser.combo.itemText(i) for i in range(chooser.combo.count())]
    assert "Run r1" in titles and "Run r1, best checkpoint" not in titles
    (run / "checkpoints" / "best.pt").write_bytes(b"x")
    chooser.refresh(project)
    i = chooser.combo.findText("Run r1, best checkpoint")
    assert i >= 0 and chooser.combo.itemData(i) == str(run / "checkpoints" / "best.pt")
