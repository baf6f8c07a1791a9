"""The built-in networks match the paper and take the sizes they promise."""

import pytest
import torch

from cyclestudio.core.networks import build_discriminator, build_generator, count_parameters
from cyclestudio.plugins.discovery import registry


def test_resnet9_generator_has_the_papers_parameter_count():
    net = build_generator("resnet_9blocks", {}, 3, 3)
    assert count_parameters(net) == 11_378_179


def test_70x70_patchgan_has_the_papers_parameter_count():
    net = build_discriminator("patchgan", {}, 3)
    assert count_parameters(net) == 2_764_737


@pytest.mark.parametrize("name", ["resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256"])
@pytest.mark.parametrize("upsample", ["transposed", "resize"])
def test_generators_keep_the_image_size(name, upsample):
    arch = registry().generator(name)
    options = arch.resolve_options({"width": 4, "upsample": upsample})
    m = arch.multiple(options)
    net = build_generator(name, options, 3, 3).eval()
    for h, w in [(m, m), (2 * m, m), (m * 3, m * 2)] if m > 4 else [(32, 32), (36, 64), (44, 20)]:
        with torch.no_grad():
            out = net(torch.rand(1, 3, h, w) * 2 - 1)
        assert out.shape == (1, 3, h, w)
        assert out.abs().max() <= 1


def test_greyscale_generator_maps_one_channel_to_one():
    net = build_generator("resnet_6blocks", {"width": 4}, 1, 1)
    assert net(torch.zeros(2, 1, 32, 32)).shape == (2, 1, 32, 32)


@pytest.mark.parametrize(
    "n_layers,size,expected", [(3, 256, 30), (3, 64, 6), (1, 64, 30), (2, 64, 14)]
)
def test_patchgan_patch_map_size(n_layers, size, expected):
    net = build_discriminator("patchgan", {"width": 4, "n_layers": n_layers}, 3)
    assert net(torch.zeros(1, 3, size, size)).shape == (1, 1, expected, expected)


def test_pixel_discriminator_scores_every_pixel():
    net = build_discriminator("pixel", {"width": 4}, 3)
    assert net(torch.zeros(2, 3, 40, 24)).shape == (2, 1, 40, 24)


def test_resize_upsampling_changes_the_decoder_not_the_encoder():
    a = build_generator("resnet_9blocks", {"upsample": "resize"}, 3, 3)
    b = build_generator("resnet_9blocks", {}, 3, 3)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in a.modules())
    assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in b.modules())


@pytest.mark.parametrize("padding", ["reflect", "replicate", "zero"])
def test_resnet_padding_option_means_the_residual_blocks_padding_for_every_choice(padding):
    # The paper pads the outer 7×7 convolutions by reflection; the option is the blocks'.
    net = build_generator("resnet_6blocks", {"width": 4, "blocks": 2, "padding": padding}, 3, 3)
    layers = list(net.model)
    assert isinstance(layers[0], torch.nn.ReflectionPad2d)
    assert isinstance(layers[-3], torch.nn.ReflectionPad2d)
    inner = {"reflect": torch.nn.ReflectionPad2d, "replicate": torch.nn.ReplicationPad2d}
    block_pads = [m for m in net.modules() if isinstance(m, torch.nn.ReflectionPad2d
                                                       | torch.nn.ReplicationPad2d)][1:-1]
    if padding == "zero":
        assert block_pads == []
    else:
        assert len(block_pads) == 4 and all(isinstance(m, inner[padding]) for m in block_pads)
    outer_pads = [m for m in layers if isinstance(m, torch.nn.ReplicationPad2d)]
    assert outer_pads == []
