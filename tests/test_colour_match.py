"""The colour-distribution loss (``--lambda-colour``): it pulls translations towards the
target domain's colours, and leaves them alone when the domains' colours already match,
even though single images differ from each other."""

from __future__ import annotations

import torch

from cyclestudio.core.colour_match import ColourMatch


def palette_images(rng: torch.Generator, count: int, size: int = 16) -> torch.Tensor:
    """Images in [-1, 1] whose colours differ from one image to the next: each is two
    random colours, split by a random vertical edge."""
    out = torch.empty(count, 3, size, size)
    for i in range(count):
        left, right = torch.rand(2, 3, 1, 1, generator=rng) * 1.6 - 0.8
        edge = int(torch.randint(2, size - 2, (), generator=rng))
        out[i, :, :, :edge] = left
        out[i, :, :, edge:] = right
    return out + torch.randn(count, 3, size, size, generator=rng) * 0.05


def learn_offset(shift: torch.Tensor, steps: int = 600) -> torch.Tensor:
    """Fit a per-channel colour offset ``o`` so that images + o look like the other
    domain, whose images are fresh images + ``shift``; return ``o`` averaged over the
    second half (the loss is a sample: single steps are noisy)."""
    data = torch.Generator().manual_seed(1)
    match = ColourMatch(torch.Generator().manual_seed(2))
    offset = torch.zeros(1, 3, 1, 1, requires_grad=True)
    opt = torch.optim.SGD([offset], lr=0.02)
    seen = []
    for _ in range(steps):
        a = palette_images(data, 1)
        b = palette_images(data, 1) + shift.view(1, 3, 1, 1)
        opt.zero_grad()
        match.loss(a + offset, b).backward()
        opt.step()
        seen.append(offset.detach().flatten().clone())
    return torch.stack(seen[steps // 2:]).mean(0)


def test_the_loss_moves_translations_to_the_other_domains_colours():
    shift = torch.tensor([0.3, -0.2, 0.0])
    offset = learn_offset(shift)
    assert torch.allclose(offset, shift, atol=0.06), offset


def test_matching_domains_are_left_alone_though_single_images_differ():
    # Each image has its own two colours, so one image against another is far apart;
    # the domains, over recent images, are the same: nothing to learn.
    offset = learn_offset(torch.zeros(3))
    assert offset.abs().max() < 0.06, offset


def test_the_loss_is_near_zero_for_the_same_pixels_and_grows_with_a_colour_cast():
    images = palette_images(torch.Generator().manual_seed(3), 70)
    same, cast = ColourMatch(torch.Generator().manual_seed(4)), ColourMatch(
        torch.Generator().manual_seed(4))
    for image in images:
        same_loss = same.loss(image[None], image[None])
        cast_loss = cast.loss(image[None] + 0.2, image[None])
    # The same pixels differ only by which were sampled: far less than a cast of 0.1.
    assert float(cast_loss) > 20 * float(same_loss)


def test_its_recent_pixels_survive_a_checkpoint():
    images = palette_images(torch.Generator().manual_seed(5), 10)
    one = ColourMatch(torch.Generator().manual_seed(6))
    for image in images[:6]:
        one.loss(image[None], image[None] * 0.5)
    two = ColourMatch(torch.Generator().manual_seed(6))
    two.generator.set_state(one.generator.get_state())
    two.load(one.state(), torch.device("cpu"))
    for image in images[6:]:
        assert torch.equal(one.loss(image[None], image[None] * 0.5),
                           two.loss(image[None], image[None] * 0.5))
