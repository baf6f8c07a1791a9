"""`cyclestudio plugins`: list the architectures, check one, start a new one, turn one off."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cyclestudio.errors import UserError

HELP = "list architecture plugins, check one, start a new one, enable or disable one"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="architectures, plugins and their errors")
    ls.add_argument("--json", action="store_true", help="machine-readable, for the app")
    check = sub.add_parser(
        "check", help="build a plugin's networks and run the checks on them",
        description="Build each architecture of a plugin file, an architecture name or a "
        "plugin name (as `plugins list` shows it) at its defaults and at its options' "
        "extremes; report output shapes, range, gradients, parameters, forward time and "
        "eval-mode determinism. Exit code 1 if anything fails.")
    check.add_argument("target", metavar="FILE_OR_NAME")
    check.add_argument("--size", type=int, default=0,
                       help="image side to check at (default: the smallest fit ≥ 64)")
    check.add_argument("--channels", type=int, default=3, choices=(1, 3),
                       help="image channels (3: colour, 1: greyscale)")
    check.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | mps")
    check.add_argument("--no-extremes", action="store_true",
                       help="only the defaults, not each option's extreme values")
    new = sub.add_parser("new", help="write a working plugin to start from")
    new.add_argument("name", help="the architecture's name (lower case, digits, underscores)")
    new.add_argument("--kind", choices=("generator", "discriminator"), default="generator")
    new.add_argument("--package", action="store_true",
                     help="an installable package (pyproject.toml, module, test) instead of "
                     "a file in the user plugin folder")
    new.add_argument("--dir", type=Path, default=None,
                     help="where to write it (default: the user plugin folder for a file, "
                     "the current folder for a package)")
    for action, text in (("enable", "load a plugin again"),
                         ("disable", "stop loading a plugin (remembered; the app follows)")):
        toggle = sub.add_parser(action, help=text)
        toggle.add_argument("plugin", metavar="PLUGIN",
                            help="the plugin's name or id, as `plugins list` shows it")
        toggle.add_argument("--json", action="store_true",
                            help="print the new `plugins list --json`, for the app")


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(args.json)
    if args.action == "new":
        return _new(args.name, args.kind, args.package, args.dir)
    if args.action in ("enable", "disable"):
        return _toggle(args.plugin, args.action == "enable", args.json)
    return _check(args.target, args.size, args.channels, args.device, not args.no_extremes)


def _list(as_json: bool) -> int:
    from cyclestudio.plugins.discovery import load_registry, user_plugin_dir

    reg = load_registry()
    if as_json:
        print(json.dumps(reg.to_json(), indent=1))
        return 0
    for kind, table in (("Generators", reg.generators), ("Discriminators", reg.discriminators)):
        print(f"{kind}:")
        for arch in table.values():
            defaults = arch.resolve_options()
            sizes = f"sides multiple of {arch.multiple(defaults)}"
            if arch.smallest(defaults) > arch.multiple(defaults):
                sizes += f", at least {arch.smallest(defaults)}"
            owner = reg.owner(arch)
            print(f"  {arch.name:<20} {arch.title}  [{sizes}]  "
                  f"from {owner.name if owner else arch.source}")
            for opt in arch.options:
                print(f"      {opt.name:<14} {opt.describe()}  {opt.help}")
    print("Plugins:")
    for p in reg.plugins:
        offers = ", ".join(p.generators + p.discriminators)
        status = p.status if p.status != "error" else "error: " + p.errors[0].message
        print(f"  {p.name:<28} {p.origin:<9} {p.version or '-':<8} {status}"
              + (f"  ({offers})" if offers else ""))
    if reg.errors:
        print("Plugins that failed to load (skipped):")
        for err in reg.errors:
            print(f"  {err.source}: {err.message}")
    print(f"User plugin folder: {user_plugin_dir()}")
    return 0


def _new(name: str, kind: str, package: bool, folder: Path | None) -> int:
    from cyclestudio.jobs.plugin_templates import write_file, write_package
    from cyclestudio.paths import user_plugin_dir

    if package:
        root = write_package(name, kind, folder or Path.cwd())
        print(f"wrote the package {root}")
        print(f"install it and run its test:  cd {root} && pip install -e '.[test]' && pytest")
        return 0
    path = write_file(name, kind, folder or user_plugin_dir())
    print(f"wrote {path}")
    print(f"check it with: cyclestudio plugins check {path}")
    return 0


def _toggle(target: str, enable: bool, as_json: bool) -> int:
    from cyclestudio.plugins.discovery import find_plugins, load_registry, set_plugin_enabled

    found = find_plugins()
    matches = [p for p in found if p.id == target] or [p for p in found if p.name == target]
    if not matches:
        names = ", ".join(sorted(p.name for p in found))
        raise UserError(f"no plugin named '{target}'", f"plugins: {names}")
    if len(matches) > 1:
        raise UserError(f"several plugins are named '{target}'",
                        "give the id instead: " + ", ".join(p.id for p in matches))
    plugin = matches[0]
    set_plugin_enabled(plugin.id, enable)
    if as_json:
        print(json.dumps(load_registry().to_json(), indent=1))
    else:
        print(f"{plugin.name} {'enabled' if enable else 'disabled'}")
    return 0


def _check(target: str, size: int, channels: int, device: str, extremes: bool) -> int:
    from cyclestudio.core.devices import pick_device
    from cyclestudio.plugins.checks import check_spec, resolve_target

    dev = pick_device(device)
    _, specs, errors = resolve_target(target)
    is_file = target.endswith(".py") or Path(target).exists()
    for err in errors:
        # The traceback is the point when checking a file being written.
        print(f"FAIL {err.source}: {err.message}", file=sys.stderr)
        if is_file and err.details:
            print(err.details, file=sys.stderr)
    if not specs and not errors:
        print(f"FAIL {target}: it offers no generators or discriminators", file=sys.stderr)
        return 1
    failed: list[str] = [e.message for e in errors]
    for spec in specs:
        for report in check_spec(spec, side=size, channels=channels, device=dev,
                                 extremes=extremes):
            print(report.text())
            failed += [f"{spec.name} ({report.label}): {f}" for f in report.failures()]
    print()
    if failed:
        print(f"{len(failed)} problem(s):", file=sys.stderr)
        for line in failed:
            print(f"FAIL {line}", file=sys.stderr)
        return 1
    print(f"all checks passed: {', '.join(s.name for s in specs)}")
    return 0

