"""The built-in networks match the paper and take the sizes they promise."""

import pytest
import torch
from helpers import cli, make_domain, visible
from PIL import Image
from torch.nn import functional as F  # noqa: N812

from cyclestudio.core.networks import (
    build_discriminator,
    build_generator,
    build_network,
    count_parameters,
)
from cyclestudio.plugins import GeneratorSpec, Option
from cyclestudio.plugins.discovery import registry
from cyclestudio.plugins.layers import (
    BlurPool2d,
    NearestUpsample2x,
    PointwiseConv2d,
    SelfAttention2d,
)


def test_resnet9_generator_has_the_papers_parameter_count():
    net = build_generator("resnet_9blocks", {}, 3, 3)
    assert count_parameters(net) == 11_378_179


def test_70x70_patchgan_has_the_papers_parameter_count():
    net = build_discriminator("patchgan", {}, 3)
    assert count_parameters(net) == 2_764_737


@pytest.mark.parametrize("name", ["resnet_9blocks", "resnet_6blocks", "resnet_attention",
                                  "unet_128", "unet_256"])
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


def test_self_attention_sits_between_the_residual_blocks_and_starts_as_the_identity():
    net = build_generator("resnet_attention", {"width": 4, "blocks": 4}, 3, 3).eval()
    layers = list(net.model)
    (at,) = [i for i, m in enumerate(layers) if isinstance(m, SelfAttention2d)]
    assert type(layers[at - 2]).__name__ == type(layers[at + 2]).__name__ == "ResnetBlock"
    assert layers[at].value.in_channels == 16  # at the 1/4-resolution bottleneck
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        before = net(x)
        layers[at].gamma.fill_(1.0)
        after = net(x)
    assert not torch.allclose(before, after)  # the attention output is wired in


def test_blurpool_does_not_alias_a_fine_checkerboard_into_a_flat_image():
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    board = ((yy + xx) % 2 * 2 - 1).float().view(1, 1, 16, 16)
    strided = board[..., ::2, ::2]  # what a stride-2 layer samples
    assert torch.equal(strided, -torch.ones(1, 1, 8, 8))
    assert BlurPool2d(1)(board).abs().max() < 1e-6  # the blur removes it instead


def test_blurpool_option_replaces_the_strided_downsampling():
    plain = build_generator("resnet_6blocks", {"width": 4}, 3, 3)
    blurred = build_generator("resnet_6blocks", {"width": 4, "downsample": "blurpool"}, 3, 3)
    assert sum(isinstance(m, BlurPool2d) for m in blurred.modules()) == 2
    convs = [m for m in blurred.modules() if isinstance(m, torch.nn.Conv2d)]
    strided = [m for m in convs if m.stride != (1, 1)]
    assert strided == [] and count_parameters(plain) == count_parameters(blurred)


def test_spectral_norm_keeps_each_discriminator_layer_at_unit_gain():
    net = build_discriminator("patchgan", {"width": 8, "spectral_norm": True}, 3).train()
    for _ in range(15):  # power iterations run with each training forward
        net(torch.rand(1, 3, 32, 32))
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert abs(float(sigma) - 1) < 0.05
    # The paper's initialisation came first: spectral norm rescales N(0, 0.02) weights.
    original = convs[2].parametrizations.weight.original
    assert 0.015 < float(original.detach().std()) < 0.025
    copy = build_discriminator("patchgan", {"width": 8, "spectral_norm": True}, 3)
    copy.load_state_dict(net.state_dict())  # a checkpoint restores it


def test_a_spec_that_keeps_its_own_init_is_not_reinitialised():
    def build(i, o, value):
        conv = torch.nn.Conv2d(i, o, 1)
        torch.nn.init.constant_(conv.weight, value)
        return conv

    for keeps in (False, True):
        spec = GeneratorSpec("c", "C", build, [Option("value", float, 0.5)],
                             keeps_own_init=keeps).validated()
        net = build_network(spec, spec.resolve_options(), 3)
        assert bool((net.weight == 0.5).all()) is keeps


def test_multiscale_patchgan_gives_each_scale_its_own_channel_of_scores():
    net = build_discriminator("multiscale_patchgan",
                              {"width": 4, "n_layers": 1, "scales": 3}, 3).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        out = net(x)
        half = net.down(x)
        quarter = net.down(half)
        assert out.shape == (2, 3, 30, 30)
        assert torch.equal(out[:, :1], net.scales[0](x))
        for i, image in ((1, half), (2, quarter)):
            expected = F.interpolate(net.scales[i](image), size=(30, 30), mode="nearest")
            assert torch.equal(out[:, i:i + 1], expected)
    assert count_parameters(net) == 3 * count_parameters(
        build_discriminator("patchgan", {"width": 4, "n_layers": 1}, 3))


def test_the_new_architectures_train_export_and_translate(tmp_path):
    a = make_domain(tmp_path / "a", 4, "warm", size=52)
    b = make_domain(tmp_path / "b", 4, "cool", size=52)
    run = tmp_path / "run"
    done = cli("train", "--a", str(a), "--b", str(b), "--out", str(run), "--size", "48",
               "--load-size", "52", "--workers", "0", "--device", "cpu", "--iterations", "3",
               "--gan-loss", "hinge",
               "--generator", "resnet_attention", "--generator-option", "width=4",
               "--generator-option", "blocks=2", "--generator-option", "downsample=blurpool",
               "--discriminator", "multiscale_patchgan", "--discriminator-option", "width=4",
               "--discriminator-option", "spectral_norm=true")
    assert done.returncode == 0, done.stderr
    model = run / "model.csmodel"
    assert model.exists()
    Image.new("RGB", (50, 38), (200, 80, 40)).save(tmp_path / "photo.png")
    out = cli("translate", str(model), str(tmp_path / "photo.png"), "--out", str(tmp_path / "t"))
    assert out.returncode == 0, out.stderr
    (made,) = visible(tmp_path / "t")
    assert Image.open(made).size == (50, 38)


def test_fast_cpu_layers_compute_what_the_standard_layers_do():
    """The 1×1 convolution and nearest upsampling that run faster on the CPU give the same
    values (and gradients) as torch's own layers, and keep a Conv2d's state-dict keys."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(5, 7, 1)
    fast = PointwiseConv2d(5, 7)
    fast.load_state_dict(conv.state_dict())
    assert fast.state_dict().keys() == conv.state_dict().keys()
    x = torch.randn(3, 5, 12, 10, requires_grad=True)
    torch.testing.assert_close(fast(x), conv(x))
    (grad_fast,) = torch.autograd.grad(fast(x).square().sum(), x)
    (grad_conv,) = torch.autograd.grad(conv(x).square().sum(), x)
    torch.testing.assert_close(grad_fast, grad_conv)
    channels_last = x.detach().contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast(channels_last), conv(channels_last))

    up = NearestUpsample2x()
    assert torch.equal(up(x), F.interpolate(x, scale_factor=2, mode="nearest"))
    assert up(x).shape == (3, 5, 24, 20)
