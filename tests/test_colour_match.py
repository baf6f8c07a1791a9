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
    # Two thirds of the way and more: it lets go within the sampling noise of a few
    # images of these very varied domains (in training the adversarial loss goes on).
    assert offset[0] > 0.2 and offset[1] < -0.133, offset
    assert abs(offset[2]) < 0.05, offset


def test_matching_domains_are_left_alone_though_single_images_differ():
    # Each image has its own two colours, so one image against another is far apart;
    # the domains, over recent images, are the same: nothing to learn.
    offset = learn_offset(torch.zeros(3))
    assert offset.abs().max() < 0.06, offset


def learn_contrast(match: ColourMatch, steps: int = 600) -> float:
    """Fit a contrast gain ``g`` (images · g) between two domains of the same images; the
    right answer is 1. Returns ``g`` averaged over the second half."""
    data = torch.Generator().manual_seed(1)
    gain = torch.ones(1, requires_grad=True)
    opt = torch.optim.SGD([gain], lr=0.02)
    seen = []
    for _ in range(steps):
        opt.zero_grad()
        match.loss(palette_images(data, 1) * gain, palette_images(data, 1)).backward()
        opt.step()
        seen.append(float(gain.detach()))
    return sum(seen[steps // 2:]) / (steps - steps // 2)


def test_it_compares_domains_so_a_right_contrast_stays_nearly_right():
    # Comparing each translation with one real picture would wash every image out
    # towards the domain's average colours; over recent images it barely pulls.
    one_picture = learn_contrast(ColourMatch(torch.Generator().manual_seed(2), images=1,
                                             real_images=1))
    domains = learn_contrast(ColourMatch(torch.Generator().manual_seed(2)))
    assert one_picture < 0.5
    # Without the gate the noise of a few images still pulls contrast in a little (0.93);
    # with it the loss lets go once the domains match.
    assert domains > 0.97, domains


def test_the_loss_grows_with_a_colour_cast():
    ours, theirs = (palette_images(torch.Generator().manual_seed(s), 300) for s in (3, 4))
    losses: dict[float, list[float]] = {}
    for cast in (0.0, 0.1, 0.3):
        match = ColourMatch(torch.Generator().manual_seed(4))
        losses[cast] = [float(match.loss(a[None] + cast, b[None]))
                        for a, b in zip(ours, theirs, strict=True)]
    # Past the fade-in and once the gate has settled, on average: the same domain's colours
    # score (nearly) nothing, a slight cast a little, a strong one much more.
    mean = {cast: sum(v[200:]) / len(v[200:]) for cast, v in losses.items()}
    assert mean[0.0] < mean[0.1] < mean[0.3], mean
    assert mean[0.3] > 10 * mean[0.1] and mean[0.1] > 10 * mean[0.0], mean


def gates(match: ColourMatch, data: torch.Generator, steps: int, cast: float) -> list[float]:
    """The gate after each step, translations being fresh images of the domain + ``cast``."""
    out = []
    for _ in range(steps):
        match.loss(palette_images(data, 1) + cast, palette_images(data, 1))
        out.append(match.gate)
    return out


def test_the_loss_stops_pushing_once_colours_match_and_comes_back_when_they_drift():
    # Translations as close to the domain as its own samples are: after the running means
    # settle, the loss is off nearly always (its noise would only nudge right colours).
    data, match = torch.Generator().manual_seed(7), ColourMatch(torch.Generator().manual_seed(8))
    matched = gates(match, data, 400, 0.0)
    assert sum(matched[200:]) / 200 < 0.1, sum(matched[200:]) / 200
    # A cast after that: the loss is back at full strength within the running means' span.
    drifted = gates(match, data, 200, 0.3)
    assert drifted[-1] == 1.0 and sum(drifted[100:]) / 100 > 0.9
    # And a cast from the start is pushed on all along.
    cast = gates(ColourMatch(torch.Generator().manual_seed(8)), data, 300, 0.3)
    assert min(cast) == 1.0


def test_its_recent_pixels_and_its_gate_survive_a_checkpoint():
    data = torch.Generator().manual_seed(5)
    ours, theirs = palette_images(data, 310) + 0.15, palette_images(data, 310)
    one = ColourMatch(torch.Generator().manual_seed(6))
    for a, b in zip(ours[:300], theirs[:300], strict=True):
        one.loss(a[None], b[None])
    assert 0 < one.gate < 1  # partly open: its running means decide the next steps
    two = ColourMatch(torch.Generator().manual_seed(6))
    two.generator.set_state(one.generator.get_state())
    two.load(one.state(), torch.device("cpu"))
    for a, b in zip(ours[300:], theirs[300:], strict=True):
        assert torch.equal(one.loss(a[None], b[None]), two.loss(a[None], b[None]))
