"""`cyclestudio train`: the command line of a training run, new or resumed.

The flags come from cyclestudio/options.py (every setting's default, range and help);
this module turns them into a validated configuration and a run folder, and leaves
the loop itself to :mod:`cyclestudio.jobs.training_loop`.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path
from typing import Any

from cyclestudio import options
from cyclestudio.errors import UserError

HELP = "train a translator between two image folders (or --resume a run)"

# Flags that only describe a new run: a resumed run takes them from its config.json.
NEW_RUN_ONLY = ("a", "b", "a_name", "b_name", "out", "generator_option",
                "discriminator_option")


def _key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def add_arguments(p: argparse.ArgumentParser) -> None:
    groups: dict[str, Any] = {}
    data = groups.setdefault(options.DATA, p.add_argument_group(options.DATA))
    data.add_argument("--a", action="append", default=[], metavar="DIR",
                      help="domain A's images (a folder or file; repeat for more)")
    data.add_argument("--b", action="append", default=[], metavar="DIR",
                      help="domain B's images (a folder or file; repeat for more)")
    data.add_argument("--a-name", default=None, help="a name for domain A (default: its folder)")
    data.add_argument("--b-name", default=None, help="a name for domain B (default: its folder)")
    data.add_argument("--out", type=Path, help="the run folder to create")
    data.add_argument("--resume", type=Path, metavar="RUN",
                      help="continue a stopped or crashed run exactly where it left off")
    arch = groups.setdefault(options.ARCH, p.add_argument_group(options.ARCH))
    options.add_arguments(p, options.TRAIN, groups=groups)
    arch.add_argument("--generator-option", type=_key_value, action="append", default=[],
                      metavar="KEY=VALUE", help="a generator option (see `plugins list`)")
    arch.add_argument("--discriminator-option", type=_key_value, action="append", default=[],
                      metavar="KEY=VALUE", help="a discriminator option")
    groups[options.RUN].add_argument("--events", action="store_true",
                                     help="JSON-lines events on stdout (for the app)")
    groups[options.RUN].add_argument(
        "--estimate", action="store_true",
        help="measure the memory and time per iteration of these settings on the device "
        "(a few real steps on random images), say whether they fit, and exit; --a/--b and "
        "--out are not needed")


def config_from_args(args: argparse.Namespace) -> Any:
    """A validated TrainConfig for a new run from the command line."""
    from cyclestudio.core.config import (
        ArchChoice,
        DataConfig,
        OptimConfig,
        RunConfig,
        TrainConfig,
        validate,
    )
    from cyclestudio.core.networks import check_size
    from cyclestudio.plugins import registry
    from cyclestudio.plugins.checks import preflight

    if (not args.a or not args.b) and not getattr(args, "estimate", False):
        missing = "--a" if not args.a else "--b"
        raise UserError(f"no {missing} folder given",
                        f"use {missing} DIR with that domain's images")
    values = options.resolve(options.given(args, options.TRAIN))
    recipe = options.preset(values["preset"])
    reg = registry()
    gen = reg.generator(values["generator"])
    dis = reg.discriminator(values["discriminator"])
    gen_options = {**recipe.architecture_options("generator", gen.name),
                   **dict(args.generator_option)}
    dis_options = {**recipe.architecture_options("discriminator", dis.name),
                   **dict(args.discriminator_option)}

    def section(name: str) -> dict[str, Any]:
        return {s.name: values[s.name] for s in options.TRAIN if s.section == name}

    for flag, truth, given in (("--val-truth", values["val_truth"], values["val_a"]),
                               ("--val-b-truth", values["val_b_truth"], values["val_b"])):
        if truth and not given:
            held = "--val-a" if flag == "--val-truth" else "--val-b"
            raise UserError(f"{flag} needs {held}: the truth belongs to named held-out images",
                            f"give {held} DIR with the images whose truth {flag} holds")
    for name in ("val_a", "val_b", "val_truth", "val_b_truth"):
        if values[name]:
            if not Path(values[name]).is_dir():
                raise UserError(f"--{name.replace('_', '-')} {values[name]} is not a folder",
                                "give a folder of images")
            values[name] = str(Path(values[name]).absolute())

    config = TrainConfig(
        data=DataConfig(
            a=tuple(str(Path(a).absolute()) for a in args.a),
            b=tuple(str(Path(b).absolute()) for b in args.b),
            a_name=args.a_name or (Path(args.a[0]).absolute().name if args.a else "") or "A",
            b_name=args.b_name or (Path(args.b[0]).absolute().name if args.b else "") or "B",
            **section("data"),
        ),
        generator=ArchChoice(gen.name, gen.resolve_options(gen_options)),
        discriminator=ArchChoice(dis.name, dis.resolve_options(dis_options)),
        optim=OptimConfig(**section("optim")),
        run=RunConfig(**section("run")),
    )
    validate(config)
    if config.data.preprocess not in ("scale_width", "none"):
        check_size(gen.name, config.generator.options, config.data.size, reg)
    elif config.optim.batch_size > 1:
        raise UserError(
            f"--preprocess {config.data.preprocess} keeps each image's shape, so --batch-size "
            "must be 1", "use resize_and_crop or crop to batch images")
    # Build both networks and try them before anything is written (plugins/checks.py).
    preflight(gen, config.generator.options, dis, config.discriminator.options,
              channels=config.data.channels, size=config.data.size, device=config.run.device)
    return config


def refuse_fixed_settings(args: argparse.Namespace) -> None:
    """A UserError naming the first flag given with --resume that a resume cannot change."""
    fixed = [f"--{name.replace('_', '-')}" for name in NEW_RUN_ONLY if getattr(args, name)]
    fixed += [s.option for s in options.TRAIN
              if not s.resumable and getattr(args, s.name, None) is not None]
    if fixed:
        can = ", ".join(s.option for s in options.TRAIN if s.resumable)
        raise UserError(
            f"{fixed[0]} cannot change when resuming: the run keeps the settings in its "
            "config.json",
            f"a resume takes only {can}; start a new run with --out to change the rest")


def resumed_config(args: argparse.Namespace, config: Any) -> Any:
    """A run's own config with the settings a resume may change applied."""
    from dataclasses import replace

    from cyclestudio.core.config import validate

    refuse_fixed_settings(args)
    for setting in options.TRAIN:
        value = getattr(args, setting.name, None)
        if value is None:
            continue
        setting.check(value)
        if setting.section == "data":
            config = replace(config, data=replace(config.data, **{setting.name: value}))
        elif setting.section == "optim":
            changes = {setting.name: value}
            if setting.name == "lr_g" and getattr(args, "lr_d", None) is None and (
                    config.optim.lr_d == config.optim.lr_g):
                changes["lr_d"] = value  # D's rate followed G's: it still does
            config = replace(config, optim=replace(config.optim, **changes))
        elif setting.section == "run":
            config = config.with_run(**{setting.name: value})
    validate(config)
    return config


def run(args: argparse.Namespace) -> int:
    from cyclestudio.core.distributed import launched_by_torchrun
    from cyclestudio.jobs.events import Control, Events, resume_command
    from cyclestudio.jobs.training_loop import Training

    if launched_by_torchrun():  # one of several processes (docs/distributed.md)
        from cyclestudio.jobs.distributed_training import run_rank

        return run_rank(args)
    if (args.gpus or 1) > 1:
        from cyclestudio.jobs.launch import launch

        return launch(args)

    folder = args.resume or args.out
    resume = resume_command(Path(folder).absolute() if folder else None)
    if args.estimate:
        return run_estimate(args)
    control = Control(read_stdin=args.events)
    events = Events(args.events, on_closed=lambda: control.put("stop"))
    control.install_signal_handlers()
    try:
        return Training.from_args(args, events, control).run()
    except UserError:
        raise
    except KeyboardInterrupt:
        events.emit("error", message="aborted by a second interrupt; the last checkpoint is kept",
                    hint=f"{resume} continues from it", kind="interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the boundary: report, never hang
        import torch

        from cyclestudio.atomic import disk_full_error

        full = disk_full_error(exc)
        if full is not None:  # metrics, samples, status: the disk, not a bug
            raise full from None

        if isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower():
            events.emit(
                "error", kind="out_of_memory",
                message=f"out of memory: {exc}".splitlines()[0],
                hint="lower --batch-size or --size, pick a smaller generator, or use --precision "
                f"bf16; the last checkpoint is kept ({resume})")
            return 3
        events.emit(
            "error", kind="internal", message=f"{type(exc).__name__}: {exc}",
            hint=f"this is a bug or a broken plugin; the last checkpoint is kept ({resume})",
            traceback=traceback.format_exc())
        if not args.events:
            traceback.print_exc()
        return 1


def run_estimate(args: argparse.Namespace) -> int:
    """`train --estimate`: probe the settings on the device and say whether they fit."""
    from cyclestudio.core.devices import pick_device
    from cyclestudio.core.estimate import describe, estimate
    from cyclestudio.jobs.events import Events
    from cyclestudio.plugins import registry

    events = Events(args.events)
    config = config_from_args(args)
    reg = registry()
    multiple = reg.generator(config.generator.name).multiple(config.generator.options)
    found = estimate(config, pick_device(config.run.device), multiple, reg)
    events.emit("estimate", message=describe(found), **found.to_json())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run `cyclestudio train`")
