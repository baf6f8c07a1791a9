"""Memory and time known before a run, and the speed measures a run reports and obeys."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import TINY, cli, events, make_domain, metrics

from cyclestudio.core import estimate as estimating
from cyclestudio.core.config import ArchChoice, DataConfig, OptimConfig, RunConfig, TrainConfig
from cyclestudio.core.speed import resolve


def tiny_config(size: int = 32, **run) -> TrainConfig:
    return TrainConfig(data=DataConfig(a=("a",), b=("b",), size=size),
                       generator=ArchChoice("resnet_6blocks", {"width": 4}),
                       discriminator=ArchChoice("patchgan", {"width": 4}),
                       optim=OptimConfig(), run=RunConfig(**run))


def test_estimate_measures_the_settings_without_any_images():
    done = cli("train", "--estimate", "--events", *TINY)
    assert done.returncode == 0, done.stderr
    (event,) = events(done.stdout)
    assert event["event"] == "estimate" and event["fits"] is True
    assert event["device"] == "cpu" and event["size"] == 32 and event["batch"] == 1
    assert event["peak_bytes"] > 0 and event["seconds_per_iteration"] > 0
    assert event["largest_size"] > 32 and event["largest_batch"] > 1
    assert "GiB at its peak" in event["message"]
    refused = cli("train", "--estimate", *TINY, "--size", "30")  # not a multiple of 4
    assert refused.returncode == 2 and "multiples of 4" in refused.stderr


def test_a_run_that_will_not_fit_says_so_with_what_would(monkeypatch):
    config = tiny_config(size=64)
    fixed = estimating._fixed_bytes(config, None)
    # A probe that needed 200 MiB at 64² (the weights and full pools included).
    needed = fixed + 200 * 2**20
    monkeypatch.setattr(estimating, "probe", lambda *a, **k: estimating.Probe(
        64, 1, needed, 0.5))
    monkeypatch.setattr(estimating, "available_memory", lambda device: 4 << 30)
    assert estimating.estimate(config, torch.device("cpu"), 4).fits
    monkeypatch.setattr(estimating, "available_memory", lambda device: 120 * 2**20)
    tight = estimating.estimate(config, torch.device("cpu"), 4)
    assert not tight.fits
    # Memory beyond the weights grows with the pixels: 120 MiB holds about half of 64².
    assert tight.largest_size is not None and 36 <= tight.largest_size <= 48
    assert tight.largest_size % 4 == 0
    assert "will not fit: try --size " + str(tight.largest_size) in estimating.describe(tight)
    monkeypatch.setattr(estimating, "available_memory", lambda device: fixed // 2)
    hopeless = estimating.estimate(config, torch.device("cpu"), 4)
    assert "smaller generator" in estimating.describe(hopeless)


def test_speed_measures_resolve_per_device_and_can_be_turned_off():
    cpu = torch.device("cpu")
    auto = resolve(RunConfig(), cpu, fixed_size=True)
    assert auto.channels_last is False and auto.benchmark is False  # measured slower on CPUs
    assert auto.precision in ("fp32", "bf16")
    forced = resolve(RunConfig(channels_last="on", fused_optimizer="on", precision="fp32"), cpu,
                     fixed_size=True)
    assert forced.channels_last and forced.fused_optimizer and forced.precision == "fp32"
    assert forced.memory_format == torch.channels_last


@pytest.fixture(scope="module")
def domains(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return make_domain(root / "a", 4, "warm", seed=1), make_domain(root / "b", 4, "cool", seed=2)


def test_a_run_with_every_speed_measure_on_learns_like_one_with_them_off(domains, tmp_path):
    a, b = domains
    losses = {}
    for name, flags in (("off", ["--channels-last", "off", "--fused-optimizer", "off"]),
                        ("on", ["--channels-last", "on", "--fused-optimizer", "on"])):
        run = tmp_path / name
        done = cli("train", "--a", str(a), "--b", str(b), "--out", str(run), *TINY,
                   "--iterations", "6", "--log-every", "1", "--precision", "fp32", *flags,
                   "--events")
        assert done.returncode == 0, done.stderr
        started = events(done.stdout)[0]
        assert started["speed"]["channels_last"] is (name == "on")
        assert started["speed"]["fused_optimizer"] is (name == "on")
        losses[name] = [m["losses"]["cycle_A"] for m in metrics(run)]
        config = json.loads((run / "config.json").read_text())
        assert config["run"]["channels_last"] == name
    # The same arithmetic in another memory layout: the first step equal up to rounding;
    # a GAN then amplifies rounding differences, but only a little in six steps.
    assert losses["on"][0] == pytest.approx(losses["off"][0], rel=1e-4)
    assert losses["on"] == pytest.approx(losses["off"], rel=0.05)


def test_the_training_page_shows_the_estimate_before_start(qtbot, tmp_path):
    from cyclestudio.gui.main_window import MainWindow
    from cyclestudio.gui.settings import Settings
    from cyclestudio.plugins import registry

    settings = Settings.load()
    settings.estimate = True
    window = MainWindow(settings, refresh=False)
    qtbot.addWidget(window)
    window.registry.plugins = registry().to_json()
    window.registry.devices = {"devices": [{"id": "cpu", "name": "CPU", "memory_bytes": None}]}
    window.show()
    window.show_page("Training")
    window.registry.plugins_changed.emit()
    window.registry.devices_changed.emit()
    setup = window.training.setup_panel
    setup.generator.select("resnet_6blocks", {"width": 4})
    setup.discriminator.form.set_values({"width": 4})
    setup.hyper.set_value("size", 32)
    line = setup.estimate
    with qtbot.waitSignal(line.estimated, timeout=120000) as done:
        pass
    while done.args[0] is not None and done.args[0]["size"] != 32:  # an earlier request
        with qtbot.waitSignal(line.estimated, timeout=120000) as done:
            pass
    assert done.args[0]["fits"] and "GiB at its peak" in line.text()
    window.close()


def test_gradient_checkpointing_trains_the_same_and_keeps_fewer_activations():
    """`--checkpointing on` gives the same step as off (recomputing is exact), and the
    generator's backward holds fewer saved tensors."""
    from cyclestudio.core.cyclegan import CycleGAN

    torch.manual_seed(0)
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    steps = {}
    for switch in ("off", "on"):
        model = CycleGAN(tiny_config(checkpointing=switch), torch.device("cpu"), 10)
        assert model.speed.checkpointing is (switch == "on")
        steps[switch] = [model.train_step(a, b) for _ in range(2)]
        weights = {k: v.clone() for k, v in model.G_A.state_dict().items()}
        steps[switch].append(weights)
    for off, on in zip(steps["off"][:2], steps["on"][:2], strict=True):
        assert off == pytest.approx(on, rel=1e-5, abs=1e-6)
    for key, value in steps["off"][2].items():
        assert torch.allclose(value, steps["on"][2][key], atol=1e-6), key

    def saved(switch: str) -> int:
        model = CycleGAN(tiny_config(checkpointing=switch), torch.device("cpu"), 10)
        count = [0]

        def pack(t):
            count[0] += t.numel()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model.G_A(a).mean().backward()
        return count[0]

    assert saved("on") < saved("off") * 0.6
    # Translating (no gradients) runs the plain forward.
    model = CycleGAN(tiny_config(checkpointing="on"), torch.device("cpu"), 10)
    with torch.no_grad():
        assert model.G_A(a).shape == a.shape


def test_a_run_that_will_not_fit_offers_gradient_checkpointing(monkeypatch):
    config = tiny_config(size=64)
    monkeypatch.setattr(estimating, "probe", lambda *a, **k: estimating.Probe(
        64, 1, estimating._fixed_bytes(config, None) + 200 * 2**20, 0.5))
    monkeypatch.setattr(estimating, "available_memory", lambda device: 120 * 2**20)
    assert "--checkpointing on" in estimating.describe(
        estimating.estimate(config, torch.device("cpu"), 4))
    on = tiny_config(size=64, checkpointing="on")
    assert "--checkpointing on" not in estimating.describe(
        estimating.estimate(on, torch.device("cpu"), 4))
