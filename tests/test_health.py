"""The run warns about the FAQ's failure modes: a discriminator that has won, and mode collapse."""

import math

import pytest
import torch

from cyclestudio.core.health import Health

HEALTHY = {"D_A": 0.2, "G_A": 0.5, "D_B": 0.25, "G_B": 0.4}


def test_a_discriminator_stuck_at_zero_is_reported_once():
    health = Health("lsgan", warmup=100)
    assert health.losses(50, {**HEALTHY, "D_A": 0.0}) == []  # too early to judge
    said = []
    for it in range(100, 200, 10):
        said += health.losses(it, {**HEALTHY, "D_A": 0.001})
    assert len(said) == 1
    assert said[0].startswith("D_A has fallen to about 0") and "--lr-d" in said[0]
    assert health.losses(200, HEALTHY) == []  # recovered: no repeat


def test_a_brief_dip_is_not_a_collapse():
    health = Health("lsgan", warmup=0)
    losses = [0.001, 0.001, 0.3, 0.001, 0.001, 0.001, 0.2]
    assert not any(health.losses(i, {**HEALTHY, "D_B": v}) for i, v in enumerate(losses))


# Each loss's discriminator loss (mean of its real and fake terms) when D cannot tell
# real from fake at all (every score 0 for vanilla and hinge, 0.5 for lsgan), and when
# it has won outright by a margin.
CHANCE = {"lsgan": 0.25, "vanilla": math.log(2), "hinge": 1.0}
WON = {"lsgan": 0.001, "vanilla": 0.005, "hinge": 0.0}


@pytest.mark.parametrize("kind", ["lsgan", "vanilla", "hinge"])
def test_a_discriminator_that_has_won_is_judged_on_its_own_losss_scale(kind):
    health = Health(kind, warmup=0)
    said = []
    for it in range(10):
        said += health.losses(it, {**HEALTHY, "D_A": CHANCE[kind], "D_B": WON[kind]})
    assert len(said) == 1 and said[0].startswith("D_B has fallen to about 0")
    # Switching to lsgan is advice only for a run that is not on it already.
    assert ("--gan-loss lsgan" in said[0]) == (kind != "lsgan")


def test_the_same_low_value_is_a_collapse_on_one_scale_and_not_on_another():
    vanilla, lsgan = Health("vanilla", warmup=0), Health("lsgan", warmup=0)
    low = {**HEALTHY, "D_A": 0.01}  # BCE with every logit right by ~5; LSGAN's D at 0.1
    assert any(vanilla.losses(i, low) for i in range(6))
    assert not any(lsgan.losses(i, low) for i in range(6))


def test_a_wgan_critics_negative_loss_is_normal_and_never_reported_as_collapse():
    # A WGAN-GP critic's loss estimates minus the Wasserstein distance (plus the penalty):
    # negative all run long in a healthy run, and it has no "won outright" level.
    health = Health("wgangp", warmup=0)
    said = []
    for it in range(0, 2000, 10):
        said += health.losses(it, {"D_A": -0.8 - it / 1e3, "G_A": 1.3, "D_B": 0.0, "G_B": 0.9})
    assert said == []


def test_an_unknown_gan_loss_is_refused():
    with pytest.raises(ValueError):
        Health("softplus")


def test_identical_translations_of_different_images_are_mode_collapse():
    health = Health("lsgan", warmup=0)
    real = torch.rand(3, 3, 16, 16) * 2 - 1
    same = torch.zeros(1, 3, 16, 16).expand(3, -1, -1, -1)
    grid = torch.stack([real, same, real, real, real * 0.9, real], 1)
    said = health.samples(500, grid)
    assert len(said) == 1 and said[0].startswith("G_A (A→B) gives nearly the same image")
    healthy = torch.stack([real, real.flip(0) * 0.8, real, real, real * 0.9, real], 1)
    assert Health("wgangp", warmup=0).samples(500, healthy) == []
    assert Health("wgangp", warmup=0).samples(500, grid)  # judged for every GAN loss


@pytest.mark.parametrize("kind", ["lsgan", "vanilla", "hinge", "wgangp"])
def test_a_training_run_judges_its_discriminators_by_its_own_gan_loss(tmp_path, kind):
    from types import SimpleNamespace

    from cyclestudio.core.config import ArchChoice, DataConfig, OptimConfig, TrainConfig
    from cyclestudio.jobs.training_loop import StepLoop
    from cyclestudio.runfolder import RunFolder

    config = TrainConfig(data=DataConfig(a=("a",), b=("b",)), generator=ArchChoice("g"),
                         discriminator=ArchChoice("d"), optim=OptimConfig(gan_loss=kind))
    training = SimpleNamespace(events=None, control=None, config=config,
                               folder=RunFolder(tmp_path))
    loop = StepLoop(training, None, total=10, per_epoch=10, images={"A": 1, "B": 1},
                    samples=(None, None))
    assert loop.health.gan_loss == kind
