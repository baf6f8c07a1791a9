"""`cyclestudio plugins`: list the architectures, check a plugin, start a new one."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from cyclestudio.errors import UserError

HELP = "list installed architecture plugins, check one, or start a new one"

TEMPLATE = '''"""{title}: a cyclestudio generator plugin.

Save this file in {folder} (or a folder named in CYCLESTUDIO_PLUGIN_PATH) and it
appears in `cyclestudio plugins list` and in the app. Check it with
`cyclestudio plugins check {path}`.
"""

from torch import nn

from cyclestudio.plugins import Architecture, Option, hookimpl


class {cls}(nn.Module):
    """Downsample once, a few convolutions, upsample once."""

    def __init__(self, in_channels: int, out_channels: int, width: int, depth: int) -> None:
        super().__init__()
        layers = [nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.ReLU(True)]
        for _ in range(depth):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.InstanceNorm2d(width)]
            layers.append(nn.ReLU(True))
        layers += [
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(width, out_channels, 3, padding=1),
            nn.Tanh(),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def build(in_channels: int, out_channels: int, width: int, depth: int) -> nn.Module:
    return {cls}(in_channels, out_channels, width, depth)


@hookimpl
def generators():
    return [
        Architecture(
            name="{name}",
            title="{title}",
            build=build,
            options=[
                Option("width", int, 32, "Channels in the hidden layers", min=1, max=512),
                Option("depth", int, 3, "Hidden 3×3 convolutions", min=0, max=32),
            ],
            size_multiple=2,
            description="A small example generator; edit it to make it yours.",
        )
    ]
'''


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="architectures and plugin errors")
    ls.add_argument("--json", action="store_true", help="machine-readable, for the app")
    check = sub.add_parser("check", help="load a plugin file (or a name) and try each network")
    check.add_argument("target", metavar="FILE_OR_NAME")
    check.add_argument(
        "--size", type=int, default=0, help="test image size (default: smallest fit)"
    )
    new = sub.add_parser("new", help="write a starting-point plugin file")
    new.add_argument("name", help="the architecture's name (lower case, digits, underscores)")
    new.add_argument(
        "--dir", type=Path, default=None, help="where to write it (default: user plugin folder)"
    )


def run(args: argparse.Namespace) -> int:
    from cyclestudio.plugins import load_registry, user_plugin_dir

    if args.action == "list":
        reg = load_registry()
        if args.json:
            print(json.dumps(reg.to_json(), indent=1))
            return 0
        for kind, table in (("Generators", reg.generators), ("Discriminators", reg.discriminators)):
            print(f"{kind}:")
            for arch in table.values():
                print(
                    f"  {arch.name:<18} {arch.title}  [sides multiple of "
                    f"{arch.multiple(arch.resolve_options())}]  from {arch.source}"
                )
                for opt in arch.options:
                    print(f"      {opt.name:<12} {opt.describe()}  {opt.help}")
        if reg.errors:
            print("Plugins that failed to load (skipped):")
            for err in reg.errors:
                print(f"  {err.source}: {err.message}")
        print(f"User plugin folder: {user_plugin_dir()}")
        return 0
    if args.action == "new":
        return _new(args.name, args.dir or user_plugin_dir())
    return _check(args.target, args.size)


def _new(name: str, folder: Path) -> int:
    if not re.match(r"^[a-z][a-z0-9_]*$", name):
        raise UserError(
            f"plugin name {name!r} is not valid", "use lower-case letters, digits and _"
        )
    path = folder / f"{name}.py"
    if path.exists():
        raise UserError(f"{path} already exists", "choose another name or edit that file")
    folder.mkdir(parents=True, exist_ok=True)
    cls = "".join(part.capitalize() for part in name.split("_")) + "Generator"
    title = name.replace("_", " ").capitalize()
    path.write_text(
        TEMPLATE.format(name=name, title=title, cls=cls, folder=folder, path=path), encoding="utf-8"
    )
    print(f"wrote {path}")
    print(f"check it with: cyclestudio plugins check {path}")
    return 0


def _check(target: str, size: int) -> int:
    import torch

    from cyclestudio.core.networks import build_discriminator, build_generator, count_parameters
    from cyclestudio.plugins import load_registry

    path = Path(target)
    is_file = path.suffix == ".py" or path.exists()
    if is_file and not path.is_file():
        raise UserError(f"{path} does not exist", "give a plugin .py file or an architecture name")
    reg = load_registry([path] if is_file else [])
    if is_file:
        resolved = str(path.resolve())
        mine = [
            a
            for a in (*reg.generators.values(), *reg.discriminators.values())
            if a.source == resolved
        ]
        errors = [e for e in reg.errors if e.source == resolved]
    else:
        mine = [t[target] for t in (reg.generators, reg.discriminators) if target in t]
        errors = []
        if not mine:
            reg.generator(target)  # raises with the list of names
    failed = bool(errors)
    for err in errors:
        print(f"FAIL {err.source}: {err.message}\n{err.details}", file=sys.stderr)
    if is_file and not mine and not errors:
        print(f"FAIL {path}: it defines no generators() or discriminators() hook", file=sys.stderr)
        return 1
    for arch in mine:
        options = arch.resolve_options()
        is_gen = arch.name in reg.generators and reg.generators[arch.name] is arch
        side = size or max(64, arch.multiple(options) if is_gen else 64)
        try:
            if is_gen:
                net = build_generator(arch.name, options, 3, 3, reg)
            else:
                net = build_discriminator(arch.name, options, 3, reg)
            with torch.no_grad():
                out = net.eval()(torch.rand(1, 3, side, side) * 2 - 1)
            if is_gen and tuple(out.shape) != (1, 3, side, side):
                raise ValueError(f"output shape {tuple(out.shape)} != input (1, 3, {side}, {side})")
            if is_gen and (out.min() < -1.0001 or out.max() > 1.0001):
                raise ValueError("output is outside [-1, 1]; end the generator with tanh")
            print(
                f"ok   {arch.name}: {count_parameters(net):,} parameters, "
                f"{side}×{side} → {tuple(out.shape[1:])}"
            )
        except Exception as exc:  # noqa: BLE001 - reporting foreign code's failure
            failed = True
            print(f"FAIL {arch.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 1 if failed else 0
