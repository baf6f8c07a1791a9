"""What `cyclestudio plugins new` writes: a generator or discriminator, as a file or a package.

Every template is a working plugin that passes `cyclestudio plugins check`; the
tests build each one. ``$name``-style fields are filled with string.Template.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from cyclestudio.errors import UserError

KINDS = ("generator", "discriminator")

CONTRACT = {
    "generator": '''\
The contract (docs/writing-plugins.md is the whole manual):
- build(in_channels, out_channels, **options) returns a torch.nn.Module; each
  option arrives as a keyword argument of the same name;
- the network maps (N, in_channels, H, W) in [-1, 1] to (N, out_channels, H, W) in
  [-1, 1] (end with tanh), for any H and W that are multiples of size_multiple;
- cyclestudio initialises every Conv/Linear weight to N(0, 0.02) after build,
  unless the spec says keeps_own_init=True.''',
    "discriminator": '''\
The contract (docs/writing-plugins.md is the whole manual):
- build(in_channels, **options) returns a torch.nn.Module; each option arrives as
  a keyword argument of the same name;
- the network maps (N, in_channels, H, W) in [-1, 1] to raw scores (N, 1, h, w),
  one per patch: no sigmoid, the GAN loss applies its own;
- it must accept images of at least min_size pixels a side;
- cyclestudio initialises every Conv/Linear weight to N(0, 0.02) after build,
  unless the spec says keeps_own_init=True.''',
}

BODY = {
    "generator": '''
from __future__ import annotations

from torch import Tensor, nn

from cyclestudio.plugins import GeneratorSpec, Option, hookimpl
from cyclestudio.plugins.layers import NORMS, UPSAMPLES, norm_layer, upsample_layer, uses_bias


class $cls(nn.Module):
    """Halve the image, a stack of 3×3 convolutions, double it back, end in tanh."""

    def __init__(
        self, in_channels: int, out_channels: int, width: int, depth: int, norm: str,
        upsample: str,
    ) -> None:
        super().__init__()
        bias = uses_bias(norm)  # a conv before batch norm needs no bias
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1, bias=bias),  # H/2, W/2
            norm_layer(norm, width),
            nn.ReLU(True),
        ]
        for _ in range(depth):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=bias),
                       norm_layer(norm, width), nn.ReLU(True)]
        layers += upsample_layer(upsample, width, width, 4, bias)  # back to H, W
        layers += [
            norm_layer(norm, width),
            nn.ReLU(True),
            nn.Conv2d(width, out_channels, 3, padding=1),
            nn.Tanh(),  # outputs in [-1, 1], like the images
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def build(
    in_channels: int, out_channels: int, width: int, depth: int, norm: str, upsample: str
) -> nn.Module:
    """Called by cyclestudio with the channel counts and every option by name."""
    return $cls(in_channels, out_channels, width, depth, norm, upsample)


@hookimpl
def generators() -> list[GeneratorSpec]:
    """The generators this plugin offers."""
    return [
        GeneratorSpec(
            name="$name",  # what --generator takes; lower case, digits, underscores
            title="$title",  # what the app shows
            build=build,
            options=[
                # name, type, default, help; then min/max or choices. The app makes a
                # form of these, the command line takes --generator-option width=64.
                Option("width", int, 32, "Channels of the hidden layers", min=1, max=512),
                Option("depth", int, 3, "3×3 convolutions in the middle", min=0, max=32),
                Option("norm", str, "instance", "Normalisation layer", choices=NORMS),
                Option("upsample", str, "resize",
                       "resize: nearest-neighbour then convolve (no checkerboard); "
                       "transposed: a transposed convolution", choices=UPSAMPLES),
            ],
            size_multiple=2,  # one halving: image sides must be even
            description="A small starting point; make it yours.",
        )
    ]
''',
    "discriminator": '''
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from cyclestudio.plugins import DiscriminatorSpec, Option, hookimpl
from cyclestudio.plugins.layers import NORMS, norm_layer, uses_bias


class $cls(nn.Module):
    """Strided 4×4 convolutions, then one raw score per patch (a small PatchGAN)."""

    def __init__(self, in_channels: int, width: int, layers: int, norm: str) -> None:
        super().__init__()
        bias = uses_bias(norm)
        stack: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        channels = width
        for _ in range(layers - 1):
            stack += [nn.Conv2d(channels, channels * 2, 4, stride=2, padding=1, bias=bias),
                      norm_layer(norm, channels * 2), nn.LeakyReLU(0.2, True)]
            channels *= 2
        stack.append(nn.Conv2d(channels, 1, 3, padding=1))  # raw scores: no sigmoid
        self.net = nn.Sequential(*stack)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def build(in_channels: int, width: int, layers: int, norm: str) -> nn.Module:
    """Called by cyclestudio with the channel count and every option by name."""
    return $cls(in_channels, width, layers, norm)


def min_size(options: Mapping[str, Any]) -> int:
    """Each strided layer halves the image; the last norm needs at least 2×2 pixels."""
    return 2 ** (int(options["layers"]) + 1)


@hookimpl
def discriminators() -> list[DiscriminatorSpec]:
    """The discriminators this plugin offers."""
    return [
        DiscriminatorSpec(
            name="$name",  # what --discriminator takes; lower case, digits, underscores
            title="$title",  # what the app shows
            build=build,
            options=[
                # The app makes a form of these; the command line takes
                # --discriminator-option layers=4.
                Option("width", int, 64, "Channels of the first layer", min=1, max=512),
                Option("layers", int, 3, "Strided layers (more: larger patches)",
                       min=1, max=6),
                Option("norm", str, "instance", "Normalisation layer", choices=NORMS),
            ],
            min_size=min_size,
            description="A small PatchGAN; a starting point to make yours.",
        )
    ]
''',
}

FILE_HEAD = '''"""$title: a cyclestudio $kind plugin.

This file is a plugin: in the user plugin folder ($folder) or a folder named
in CYCLESTUDIO_PLUGIN_PATH, its $kind appears in `cyclestudio plugins list`,
in the app and to `cyclestudio train --$kind $name`. Check it with

    cyclestudio plugins check $path

$contract
"""
'''

PACKAGE_HEAD = '''"""$title: a cyclestudio $kind plugin, shipped as the package $dist.

Installed (`pip install .`), it is found through the "cyclestudio" entry point in
pyproject.toml; `cyclestudio plugins check $name` checks it.

$contract
"""
'''

PYPROJECT = '''[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "$title: a $kind for cyclestudio"
requires-python = ">=3.10"
dependencies = ["cyclestudio", "torch"]

[project.optional-dependencies]
test = ["pytest"]

# This table is what makes the package a plugin: cyclestudio imports every module
# named in the "cyclestudio" entry-point group. The key is the plugin's name in
# `cyclestudio plugins list` (and what `plugins disable` takes).
[project.entry-points.cyclestudio]
$name = "$module"

[tool.setuptools]
py-modules = ["$module"]
'''

TEST = '''"""$title passes cyclestudio's checks once installed (`pip install -e ".[test]"`)."""

from cyclestudio.plugins.checks import check_architecture
from cyclestudio.plugins.discovery import load_registry


def test_the_entry_point_finds_the_$kind():
    registry = load_registry()
    plugin = registry.plugin("$name")
    assert plugin is not None, "not installed: run pip install -e . first"
    assert plugin.status == "ok", plugin.errors
    assert "$name" in plugin.${kind}s


def test_${name}_passes_the_checks():
    # The same checks as `cyclestudio plugins check $name`: output shape at several
    # sizes, range, gradients, eval-mode determinism, and every option's extremes
    # (here with a small width, to stay quick).
    reports = check_architecture("$name", options={"width": 4})
    assert all(r.ok for r in reports), "\\n\\n".join(r.text() for r in reports)
'''

README = '''# $dist

$title: a $kind for cyclestudio, as an installable plugin.

```
pip install -e ".[test]"      # install it, with pytest
pytest                        # runs cyclestudio's checks on it
cyclestudio plugins list      # it is listed, as package $dist
cyclestudio train --$kind $name ...
```
'''


def _names(name: str, kind: str) -> dict[str, str]:
    if not re.match(r"^[a-z][a-z0-9_]*$", name):
        raise UserError(f"plugin name {name!r} is not valid",
                        "use lower-case letters, digits and _, starting with a letter")
    if kind not in KINDS:
        raise UserError(f"--kind {kind} is not a plugin kind", "use generator or discriminator")
    suffix = "Generator" if kind == "generator" else "Discriminator"
    stem = name.removesuffix("_" + kind) or name  # my_generator → MyGenerator
    return {
        "name": name, "kind": kind,
        "cls": "".join(part.capitalize() for part in stem.split("_")) + suffix,
        "title": name.replace("_", " ").capitalize(),
        "dist": "cyclestudio-" + name.replace("_", "-"),
        "module": f"cyclestudio_{name}",
        "contract": CONTRACT[kind],
    }


def write_file(name: str, kind: str, folder: Path) -> Path:
    """Write a one-file plugin into ``folder`` (the user plugin folder by default)."""
    fields = _names(name, kind)
    path = folder / f"{name}.py"
    if path.exists():
        raise UserError(f"{path} already exists", "choose another name or edit that file")
    folder.mkdir(parents=True, exist_ok=True)
    text = Template(FILE_HEAD + BODY[kind]).substitute(fields, folder=folder, path=path)
    path.write_text(text, encoding="utf-8")
    return path


def write_package(name: str, kind: str, parent: Path) -> Path:
    """Write an installable plugin package (pyproject.toml, module, test) under ``parent``."""
    fields = _names(name, kind)
    root = parent / fields["dist"]
    if root.exists():
        raise UserError(f"{root} already exists", "choose another name or another --dir")
    (root / "tests").mkdir(parents=True)
    files = {
        root / "pyproject.toml": PYPROJECT,
        root / "README.md": README,
        root / f"{fields['module']}.py": PACKAGE_HEAD + BODY[kind],
        root / "tests" / f"test_{name}.py": TEST,
    }
    for path, template in files.items():
        path.write_text(Template(template).substitute(fields), encoding="utf-8")
    return root
