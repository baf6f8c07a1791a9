"""The default recipe learns a colour mapping on a CPU in seconds; the paper's is unchanged.

The first test is the story of benchmarks/quality.py in miniature: the default preset,
with only the image size shrunk, trained for a few hundred tiny iterations, ends
closer to the held-out truth than the untranslated inputs are.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import TINY, cli, events, metrics, paired_task
from PIL import Image

from cyclestudio import options
from cyclestudio.core.modelfile import export_model, load_model
from cyclestudio.core.networks import build_generator, count_parameters
from cyclestudio.plugins.layers import init_weights
from cyclestudio_plugins.resnet_generator import ResnetGenerator

PAPER_RESNET9_PARAMETERS = 11_378_179  # the official code's ResNet-9, ngf 64, RGB


def grade(x: np.ndarray) -> np.ndarray:
    """The true mapping: mix the channels, then a per-channel gamma (a colour grade)."""
    mix = np.array([[0.8, 0.2, 0.0], [0.1, 0.75, 0.15], [0.05, 0.3, 0.65]])
    return np.power(np.clip(x @ mix.T, 0, 1), np.array([0.75, 1.1, 1.6]))


def scene(rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """A two-colour gradient with two flat discs."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
    t = (t - t.min()) / np.ptp(t)
    image = rng.uniform(0.2, 0.9, 3) * (1 - t) + rng.uniform(0.2, 0.9, 3) * t
    for _ in range(2):
        cx, cy, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.25)
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r)[..., None]
        image = np.where(disc, rng.uniform(0.05, 0.95, 3), image)
    return image


def test_the_default_recipe_gets_closer_to_the_truth_than_doing_nothing(tmp_path):
    paired_task(tmp_path, scene, grade, train=32, test=8)
    run = tmp_path / "run"
    # The default preset's settings and networks; only the images are small.
    done = cli("train", "--a", str(tmp_path / "A"), "--b", str(tmp_path / "B"),
               "--out", str(run), "--size", "32", "--workers", "0", "--device", "cpu",
               "--iterations", "200", "--val-every", "100", "--val-a", str(tmp_path / "testA"),
               "--val-truth", str(tmp_path / "truth"), "--events", timeout=240)
    assert done.returncode == 0, done.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["run"]["preset"] == options.DEFAULT_PRESET
    recipe = options.preset(options.DEFAULT_PRESET)
    assert config["generator"]["options"].items() >= recipe.generator_options.items()
    last = metrics(run, "validation")[-1]["validation"]
    assert last["psnr_A"] > last["psnr_A_input"] + 1, last
    assert last["ssim_A"] > last["ssim_A_input"], last


def reference_resnet(blocks: int, seed: int) -> torch.nn.Module:
    """The paper's network as it was built before the identity-start options existed."""
    torch.manual_seed(seed)
    net = ResnetGenerator(3, 3, 64, blocks, "instance", False, "transposed", "reflect",
                          "strided")
    init_weights(net)
    return net


@pytest.mark.parametrize("given", [{}, {"width": 64, "upsample": "transposed"},
                                   {"residual": False, "pixel_branch": 0}])
def test_paper_style_options_build_exactly_the_old_network(given):
    old = reference_resnet(9, seed=3).state_dict()
    torch.manual_seed(3)
    new = build_generator("resnet_9blocks", given, 3, 3).state_dict()
    assert list(new) == list(old)
    assert all(torch.equal(new[k], old[k]) for k in old)
    assert sum(v.numel() for k, v in new.items() if "running" not in k) == (
        PAPER_RESNET9_PARAMETERS)


def test_a_model_file_without_the_new_options_loads_as_the_old_network(tmp_path):
    from model_helpers import make_run

    run = make_run(tmp_path / "run", options={"width": 4, "blocks": 1})
    model = load_model(export_model(run, tmp_path / "old.csmodel"))
    assert "residual" not in json.loads((run / "config.json").read_text())["generator"][
        "options"]
    assert isinstance(model.generator("a2b"), ResnetGenerator)


def test_the_identity_start_returns_its_input_until_it_learns():
    net = build_generator("resnet_6blocks", {"width": 8, "residual": True,
                                             "pixel_branch": 8}, 3, 3)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(net(x), x)
    plain = build_generator("resnet_6blocks", {"width": 8}, 3, 3)
    # The same body, plus the small colour branch (3→8→8→3 1×1 convolutions).
    assert count_parameters(net) == count_parameters(plain) + (3 * 8 + 8) + (8 * 8 + 8) + (
        8 * 3 + 3)
    with pytest.raises(Exception, match="pixel_branch needs residual"):
        build_generator("resnet_6blocks", {"width": 8, "pixel_branch": 8}, 3, 3)


def default_model(task: dict, size: int = 32):
    """A CycleGAN built as `cyclestudio train` builds one with the default preset."""
    from cyclestudio.cli import build_parser
    from cyclestudio.core.cyclegan import CycleGAN
    from cyclestudio.jobs.train import config_from_args

    args = build_parser().parse_args(["train", "--a", str(task["A"]), "--b", str(task["B"]),
                                      "--out", "unused", "--size", str(size), "--device", "cpu"])
    config = config_from_args(args)
    return CycleGAN(config, torch.device("cpu"), 10), config


def psnr_of(net: torch.nn.Module, inputs, truths) -> float:
    """Mean PSNR (dB) of ``net``'s translations of PNG files against their truths."""
    from PIL import Image

    from cyclestudio.core.metrics import psnr

    scores = []
    for source, truth in zip(inputs, truths, strict=True):
        x = torch.from_numpy(np.asarray(Image.open(source), dtype=np.float32) / 127.5 - 1)
        with torch.no_grad():
            y = net(x.permute(2, 0, 1)[None])[0].permute(1, 2, 0).clamp(-1, 1)
        translated = np.round((y.numpy() + 1) * 127.5) / 255
        scores.append(psnr(translated, np.asarray(Image.open(truth), dtype=np.float64) / 255))
    return float(np.mean(scores))


def blur(x: np.ndarray, sigma: float = 1.2) -> np.ndarray:
    """The true mapping of a sharpness task: a Gaussian blur (reflected borders)."""
    radius = int(np.ceil(3 * sigma))
    k = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma**2))
    k /= k.sum()
    p = np.pad(x, ((radius, radius), (radius, radius), (0, 0)), mode="reflect")
    h, w = x.shape[:2]
    rows = sum(k[i] * p[:, i:i + w] for i in range(len(k)))
    return sum(k[i] * rows[i:i + h] for i in range(len(k)))


def starts(model, task: dict, config):
    """The default preset's starts, as `cyclestudio train` makes them on a fresh run."""
    from cyclestudio.core.starts import run_starts

    return run_starts(model, sorted(task["A"].iterdir()), sorted(task["B"].iterdir()),
                      config.data, seed=0, colour_on=config.optim.colour_start,
                      sharpness_on=config.optim.sharpness_start)


def test_the_colour_start_begins_at_the_colour_change_before_any_training_step(tmp_path):
    task = paired_task(tmp_path, scene, grade, train=32, test=8)
    model, config = default_model(task)
    assert config.optim.colour_start  # the default preset's
    both = starts(model, task, config)
    result = both.colour
    assert not both.sharpness.applied, both.sharpness  # a grade leaves the detail as it is
    assert result.applied and result.distance > 2 * result.floor, result
    test, truth = sorted(task["testA"].iterdir()), sorted(task["truth"].iterdir())
    identity = torch.nn.Identity()
    # A→B on the held-out images against their graded truth; B→A takes the truth back.
    # The weight averages (what validation and the model file use) start there too.
    # Measured: 28.7 and 26.3 dB against 18.6 untranslated (an identity start: 18.6).
    for net, inputs, targets in ((model.G_A, test, truth), (model.ema["G_A"], test, truth),
                                 (model.G_B, truth, test), (model.ema["G_B"], truth, test)):
        before = psnr_of(identity, inputs, targets)
        assert psnr_of(net, inputs, targets) > before + 5, (net, before)


def test_the_starts_leave_domains_that_differ_in_neither_colour_nor_detail_as_they_are(
        tmp_path):
    # Two sets of the same kind of scene (as with a shape change): no colour change and
    # no blur to start at, so the generators stay the identity, weights untouched.
    task = paired_task(tmp_path, scene, lambda x: x, train=32, test=1)
    model, config = default_model(task)
    before = {k: v.clone() for k, v in model.G_A.state_dict().items()}
    both = starts(model, task, config)
    result = both.colour
    assert not result.applied and result.distance <= 2 * result.floor, result
    assert "start as the identity" in result.note
    assert not both.sharpness.applied, both.sharpness
    assert "start as the identity" in both.sharpness.note
    after = model.G_A.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_the_sharpness_start_begins_at_the_blur_and_its_inverse_before_any_step(tmp_path):
    task = paired_task(tmp_path, scene, blur, train=32, test=8)
    model, config = default_model(task)
    assert config.optim.sharpness_start  # the default preset's
    assert config.generator.options["filter_branch"] > 0
    both = starts(model, task, config)
    result = both.sharpness
    assert result.applied and result.change > 2 * result.floor, result
    assert not both.colour.applied, both.colour  # a blur keeps the colours
    assert result.gains[0] < 0.5 < 1.5 < result.gains[1], result  # A→B blurs, B→A sharpens
    assert "blur A→B" in result.note and "sharpening B→A" in result.note
    test, truth = sorted(task["testA"].iterdir()), sorted(task["truth"].iterdir())
    identity = torch.nn.Identity()
    # A→B on the held-out images against their blurred truth (the weight averages too);
    # B→A takes the blurred truth back to the sharp images, which cannot be done exactly.
    # Measured: 49.0 and 30.7 dB against 28.2 untranslated (an identity start: 28.2).
    for net, inputs, targets, gain in ((model.G_A, test, truth, 5),
                                       (model.ema["G_A"], test, truth, 5),
                                       (model.G_B, truth, test, 1),
                                       (model.ema["G_B"], truth, test, 1)):
        before = psnr_of(identity, inputs, targets)
        assert psnr_of(net, inputs, targets) > before + gain, (net, before)


def test_the_default_recipe_sharpens_a_blurred_domain_closer_to_the_truth(tmp_path):
    # B is A blurred; held out: blurred images with their sharp truth (B→A sharpens).
    task = paired_task(tmp_path, scene, blur, train=32, test=0)
    rng = np.random.default_rng(7)
    for i in range(8):
        sharp = scene(rng)
        for folder, image in (("testB", blur(sharp)), ("truthB", sharp)):
            (tmp_path / folder).mkdir(exist_ok=True)
            Image.fromarray((np.clip(image, 0, 1) * 255).round().astype("uint8")).save(
                tmp_path / folder / f"{i:02d}.png")
    run = tmp_path / "run"
    # The default preset's settings and networks; only the images are small.
    done = cli("train", "--a", str(task["A"]), "--b", str(task["B"]), "--out", str(run),
               "--size", "32", "--workers", "0", "--device", "cpu", "--iterations", "100",
               "--val-every", "100", "--val-b", str(tmp_path / "testB"),
               "--val-b-truth", str(tmp_path / "truthB"), "--events", timeout=240)
    assert done.returncode == 0, done.stderr
    started = next(e for e in events(done.stdout) if e["event"] == "started")
    assert started["sharpness_start"]["applied"] is True, started["sharpness_start"]
    # Measured at iteration 100: SSIM 0.928 against the input's 0.876, PSNR 29.5 against
    # 28.9 (fp32: 0.927, 29.3). With --no-sharpness-start: SSIM 0.875, PSNR 27.6 (fp32:
    # 0.875, 28.1), under both bars.
    (line,) = metrics(run, "validation")
    figures = line["validation"]
    assert figures["ssim_B"] > figures["ssim_B_input"] + 0.02, figures
    assert figures["psnr_B"] > figures["psnr_B_input"] - 0.3, figures


@pytest.mark.parametrize(("option", "start", "branch", "other"), [
    ("pixel_branch=0", "colour", "colour branch", "sharpness"),
    ("filter_branch=0", "sharpness", "filter branch", "colour"),
])
def test_a_generator_without_a_start_s_branch_trains_from_its_own_start_and_says_so(
        tmp_path, option, start, branch, other):
    task = paired_task(tmp_path, scene, grade if start == "colour" else blur, train=4,
                       test=1)
    done = cli("train", "--a", str(task["A"]), "--b", str(task["B"]), "--out",
               str(tmp_path / "run"), *TINY, "--generator-option", option,
               "--iterations", "2", "--events")
    assert done.returncode == 0, done.stderr
    evs = events(done.stdout)
    (warning,) = [e for e in evs
                  if e["event"] == "warning" and f"{start} start" in e["message"]]
    assert f"no {branch}" in warning["message"]
    assert f"--no-{start}-start" in warning["hint"]
    started = next(e for e in evs if e["event"] == "started")
    assert started[f"{start}_start"]["applied"] is False
    assert started[f"{other}_start"] is not None  # the other start goes on as it was


def test_the_filter_branch_starts_as_the_identity_and_needs_an_odd_size():
    net = build_generator("resnet_6blocks", {"width": 8, "residual": True,
                                             "filter_branch": 5}, 3, 3)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(net(x), x)
    plain = build_generator("resnet_6blocks", {"width": 8, "residual": True}, 3, 3)
    # One 5×5 a channel, saved with the network but never trained: not a parameter.
    assert count_parameters(net) == count_parameters(plain)
    assert net.state_dict()["filter.weight"].shape == (3, 1, 5, 5)
    with torch.no_grad():  # a filter of weight + δ: a box blur of the image
        net.filter_branch.weight.fill_(1 / 25)
        net.filter_branch.weight[:, :, 2, 2] -= 1
    flat = torch.full((1, 3, 32, 32), 0.3)
    assert torch.allclose(net(flat), flat, atol=1e-6)  # a flat image stays as it is
    with pytest.raises(Exception, match="filter_branch must be odd"):
        build_generator("resnet_6blocks", {"width": 8, "residual": True,
                                           "filter_branch": 4}, 3, 3)
    with pytest.raises(Exception, match="filter_branch needs residual"):
        build_generator("resnet_6blocks", {"width": 8, "filter_branch": 3}, 3, 3)


def test_a_file_that_breaks_after_the_scan_stops_the_starts_with_its_name(tmp_path):
    from cyclestudio.errors import UserError

    task = paired_task(tmp_path, scene, grade, train=4, test=1)
    model, config = default_model(task)
    broken = sorted(task["A"].iterdir())[1]
    broken.write_bytes(broken.read_bytes()[:40])  # truncated after the run listed it
    with pytest.raises(UserError, match="can no longer be read") as caught:
        starts(model, task, config)
    assert str(broken) in str(caught.value)
