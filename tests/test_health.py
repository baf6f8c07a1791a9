"""The run warns about the FAQ's failure modes: a discriminator at 0, and mode collapse."""

import torch

from cyclestudio.core.health import Health

HEALTHY = {"D_A": 0.2, "G_A": 0.5, "D_B": 0.25, "G_B": 0.4}


def test_a_discriminator_stuck_at_zero_is_reported_once():
    health = Health(warmup=100)
    assert health.losses(50, {**HEALTHY, "D_A": 0.0}) == []  # too early to judge
    said = []
    for it in range(100, 200, 10):
        said += health.losses(it, {**HEALTHY, "D_A": 0.001})
    assert len(said) == 1
    assert said[0].startswith("D_A has fallen to about 0") and "--lr-d" in said[0]
    assert health.losses(200, HEALTHY) == []  # recovered: no repeat


def test_a_brief_dip_is_not_a_collapse():
    health = Health(warmup=0)
    losses = [0.001, 0.001, 0.3, 0.001, 0.001, 0.001, 0.2]
    assert not any(health.losses(i, {**HEALTHY, "D_B": v}) for i, v in enumerate(losses))


def test_identical_translations_of_different_images_are_mode_collapse():
    health = Health(warmup=0)
    real = torch.rand(3, 3, 16, 16) * 2 - 1
    same = torch.zeros(1, 3, 16, 16).expand(3, -1, -1, -1)
    grid = torch.stack([real, same, real, real, real * 0.9, real], 1)
    said = health.samples(500, grid)
    assert len(said) == 1 and said[0].startswith("G_A (A→B) gives nearly the same image")
    healthy = torch.stack([real, real.flip(0) * 0.8, real, real, real * 0.9, real], 1)
    assert Health(warmup=0).samples(500, healthy) == []
