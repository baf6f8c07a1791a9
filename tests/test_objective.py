"""The CycleGAN objective: each GAN loss trains; the pool and schedules follow the paper."""

import copy
import math

import pytest
import torch

from cyclestudio.core.config import ArchChoice, DataConfig, OptimConfig, RunConfig, TrainConfig
from cyclestudio.core.cyclegan import (
    CycleGAN,
    GANLoss,
    ImagePool,
    average_decay,
    gradient_penalty,
    lr_factor,
)
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


@pytest.mark.parametrize(("iteration", "share"), [(0, 0.5), (50, 0.75), (100, 1.0), (400, 1.0)])
def test_the_cycle_warm_up_starts_at_half_the_weight_and_grows_to_all_of_it(iteration, share):
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    cycle = {}
    for warmup in (0, 100):  # the same seed: the same weights, so only the weight differs
        model = CycleGAN(tiny_config(cycle_warmup=warmup), torch.device("cpu"), 10)
        model.set_lr(iteration)  # what the training loop calls before each step
        losses = model.train_step(a, b)
        cycle[warmup] = (losses["cycle_A"], losses["cycle_B"], losses["idt_A"])
    assert cycle[100][0] == pytest.approx(share * cycle[0][0], rel=1e-5)
    assert cycle[100][1] == pytest.approx(share * cycle[0][1], rel=1e-5)
    assert cycle[100][2] == pytest.approx(cycle[0][2], rel=1e-5)  # identity: the whole λ


@pytest.mark.parametrize("ramp", [3, 9])
def test_the_weight_average_trails_steadily_moving_weights_by_a_share_of_the_run(ramp):
    model = CycleGAN(tiny_config(ema=0.999, ema_ramp=ramp), torch.device("cpu"), 10)
    with torch.no_grad():
        for p in model.ema["G_A"].parameters():
            p.zero_()
        steps = 300
        for step in range(1, steps + 1):  # weights that move at a steady pace: step k puts k
            for p in model.nets["G_A"].parameters():
                p.fill_(step)
            model.update_average()
    lag = steps - next(model.ema["G_A"].parameters()).mean().item()
    assert lag == pytest.approx(steps / (ramp + 1), rel=0.02)  # 75 steps at 3, 30 at 9
    # Ramp 9 is the decay the weight average had before it had a ramp (and what a run
    # folder from then loads as), so such a run resumes with the average it began with.
    assert OptimConfig().ema_ramp == 9
    first_form = [min(0.999, (1 + n) / (10 + n)) for n in range(1, 12_000)]
    assert [average_decay(0.999, 9, n) for n in range(1, 12_000)] == first_form
    assert average_decay(0.999, ramp, 100_000) == 0.999


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_colour_loss_is_logged_and_continues_exactly_from_a_checkpoint(precision):
    config = tiny_config(lambda_colour=30.0).with_run(precision=precision)
    images = [(torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1)
              for _ in range(24)]
    model = CycleGAN(config, torch.device("cpu"), 10)
    for a, b in images[:3]:
        losses = model.train_step(a, b)
    assert {"colour_A", "colour_B"} <= set(losses)
    assert losses["colour_A"] > 0 and losses["colour_B"] > 0
    for a, b in images[3:20]:  # past 16 steps, the gate's running means have begun
        model.train_step(a, b)
    saved = copy.deepcopy(model.state_dict())  # on the CPU it shares the live tensors
    assert len(saved["colour"]["A"]["real"]) == 20  # the recent pixels are in it
    assert saved["colour"]["A"]["floor"] is not None  # and the gate's running means

    straight = [model.train_step(a, b) for a, b in images[20:]]
    again = CycleGAN(config, torch.device("cpu"), 10)
    again.load_state_dict(saved)
    assert [again.train_step(a, b) for a, b in images[20:]] == straight


def grads_after_one_step(lambda_colour: float, **generator: object) -> dict[str, torch.Tensor]:
    """G_A's gradients after one step from the same weights (none of them zero)."""
    config = TrainConfig(
        data=DataConfig(a=("a",), b=("b",), size=32),
        generator=ArchChoice("resnet_6blocks", {"width": 4, **generator}),
        discriminator=ArchChoice("patchgan", {"width": 4, "norm": "none"}),
        optim=OptimConfig(lambda_identity=0.0, lambda_colour=lambda_colour, lr_g=1e-12,
                          lr_d=1e-12),
        run=RunConfig(seed=3))
    model = CycleGAN(config, torch.device("cpu"), 10)
    with torch.no_grad():  # the identity start's zeros would block the gradients
        noise = torch.Generator().manual_seed(5)
        for p in (*model.G_A.parameters(), *model.G_B.parameters()):
            p.add_(torch.randn(p.shape, generator=noise) * 0.01)
    images = torch.Generator().manual_seed(6)
    model.train_step(torch.rand(1, 3, 32, 32, generator=images) * 2 - 1,
                     torch.rand(1, 3, 32, 32, generator=images) * 2 - 1)
    return {k: p.grad.clone() for k, p in model.G_A.named_parameters()}


def test_the_colour_loss_trains_the_colour_branch_alone_where_there_is_one():
    branch = {"residual": True, "pixel_branch": 8}
    without, with_ = grads_after_one_step(0.0, **branch), grads_after_one_step(30.0, **branch)
    for name, grad in without.items():
        if name.startswith("pixel."):
            assert not torch.allclose(grad, with_[name]), name
        else:  # the spatial part sees no colour loss: it cannot paint colours around objects
            assert torch.equal(grad, with_[name]), name
    # A generator without one is trained by the loss as a whole.
    without, with_ = grads_after_one_step(0.0), grads_after_one_step(30.0)
    assert not torch.allclose(without["model.1.weight"], with_["model.1.weight"])


def test_the_colour_loss_is_off_and_unlogged_at_weight_zero_as_in_the_paper():
    model = CycleGAN(tiny_config(), torch.device("cpu"), 10)
    assert model.colour == {}
    losses = model.train_step(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32))
    assert "colour_A" not in losses


def linear_critic(weight_norm: float) -> torch.nn.Module:
    """D(x) = w·x with ‖w‖ = weight_norm: its gradient is w at every input."""
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 1, bias=False))
    with torch.no_grad():
        w = torch.randn(1, 3 * 8 * 8, generator=torch.Generator().manual_seed(1))
        critic[1].weight.copy_(w / w.norm() * weight_norm)
    return critic


@pytest.mark.parametrize("norm,penalty", [(1.0, 0.0), (3.0, 4.0), (0.5, 0.25)])
def test_gradient_penalty_is_zero_only_for_unit_gradients(norm, penalty):
    real, fake = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    gp = gradient_penalty(linear_critic(norm), real, fake, torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx(penalty, abs=1e-5)  # (‖w‖ − 1)²
    assert gp.requires_grad  # it trains the critic


def test_gradient_penalty_of_a_real_discriminator_is_positive_and_trains_it():
    d = build_discriminator("patchgan", {"width": 4}, 3)
    real, fake = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    gp = gradient_penalty(d, real, fake, torch.Generator().manual_seed(0))
    assert gp.item() > 0
    gp.backward()
    # Every convolution's weights get a gradient (biases cannot: they do not change ∇ₓD).
    weights = [p for p in d.parameters() if p.dim() == 4]
    assert weights and all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)


# Raw scores for two real and two fake images, and each loss worked out by hand. The
# discriminator's loss is halved, as in the paper's code ("slows down D").
REAL, FAKE = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -2.0])
softplus = lambda v: math.log(1 + math.exp(v))  # noqa: E731 - BCE with logits is softplus(∓x)
KNOWN = {
    # generator: mean (f − 1)²; discriminator: ½ [mean (r − 1)² + mean f²]
    "lsgan": ((0.25 + 9) / 2, 0.5 * ((1 + 4) / 2 + (0.25 + 4) / 2)),
    # generator: mean softplus(−f); discriminator: ½ [mean softplus(−r) + mean softplus(f)]
    "vanilla": ((softplus(-0.5) + softplus(2)) / 2,
                0.5 * ((softplus(-2) + softplus(1)) / 2 + (softplus(0.5) + softplus(-2)) / 2)),
    # generator: −mean f; discriminator: ½ [mean relu(1 − r) + mean relu(1 + f)]
    "hinge": (0.75, 0.5 * ((0 + 2) / 2 + (1.5 + 0) / 2)),
    # generator: −mean f; discriminator: ½ [mean f − mean r] (the penalty is added apart)
    "wgangp": (0.75, 0.5 * (-0.75 - 0.5)),
}


@pytest.mark.parametrize("kind", sorted(KNOWN))
def test_each_gan_loss_gives_the_values_worked_out_by_hand(kind):
    generator, discriminator = KNOWN[kind]
    loss = GANLoss(kind)
    assert loss.generator(FAKE).item() == pytest.approx(generator, rel=1e-6)
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(discriminator, rel=1e-6)


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
