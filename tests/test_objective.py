"""The CycleGAN objective: each GAN loss trains; the pool and schedules follow the paper."""

import pytest
import torch

from cyclestudio.core.config import ArchChoice, DataConfig, OptimConfig, RunConfig, TrainConfig
from cyclestudio.core.cyclegan import CycleGAN, ImagePool, gradient_penalty, lr_factor
from cyclestudio.core.networks import build_discriminator


def tiny_config(**optim):
    return TrainConfig(
        data=DataConfig(a=("a",), b=("b",), size=32),
        generator=ArchChoice("resnet_6blocks", {"width": 4}),
        discriminator=ArchChoice("patchgan", {"width": 4}),
        optim=OptimConfig(**optim),
        run=RunConfig(seed=3),
    )


@pytest.mark.parametrize("loss", ["lsgan", "vanilla", "hinge", "wgangp"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_each_gan_loss_takes_finite_steps_that_change_both_sides(loss, precision):
    config = tiny_config(gan_loss=loss)
    config = config.with_run(precision=precision)
    model = CycleGAN(config, torch.device("cpu"), iterations_per_epoch=10)
    g_before = [p.clone() for p in model.G_A.parameters()]
    d_before = [p.clone() for p in model.D_A.parameters()]
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    losses = model.train_step(a, b)
    assert set(losses) == {"D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"}
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert any(
        not torch.equal(p, q) for p, q in zip(g_before, model.G_A.parameters(), strict=False)
    )
    assert any(
        not torch.equal(p, q) for p, q in zip(d_before, model.D_A.parameters(), strict=False)
    )


def test_identity_loss_is_off_when_its_weight_is_zero():
    model = CycleGAN(tiny_config(lambda_identity=0), torch.device("cpu"), 10)
    losses = model.train_step(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32))
    assert losses["idt_A"] == 0 and losses["idt_B"] == 0


def test_gradient_penalty_is_zero_only_for_unit_gradients():
    d = build_discriminator("patchgan", {"width": 4}, 3)
    real, fake = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    gp = gradient_penalty(d, real, fake, torch.Generator().manual_seed(0))
    assert gp.item() > 0 and gp.requires_grad


def test_the_pool_returns_fresh_fakes_until_full_then_swaps_about_half():
    pool = ImagePool(4, torch.Generator().manual_seed(0))
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)
    swapped = 0
    for i in range(200):
        image = torch.full((1, 1, 1, 1), 100.0 + i)
        swapped += int(pool.query(image).item() != 100.0 + i)
    assert 70 < swapped < 130
    assert torch.equal(ImagePool(0, torch.Generator()).query(first), first)


def test_learning_rate_schedules():
    # linear: constant for the first half, then down to 0 at the end (the paper).
    assert lr_factor("linear", 0, 200, 100, 50) == 1
    assert lr_factor("linear", 99, 200, 100, 50) == 1
    assert lr_factor("linear", 150, 200, 100, 50) == pytest.approx(0.5)
    assert lr_factor("linear", 200, 200, 100, 50) == 0
    assert lr_factor("cosine", 100, 200, 100, 50) == pytest.approx(0.5)
    assert lr_factor("step", 120, 200, 100, 50) == pytest.approx(0.01)
