"""The `cyclestudio` command: no arguments opens the app; subcommands run jobs headless.

Each subcommand lives in a module with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; those modules import torch only inside ``run`` so that
building the parser (and opening the app) stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence

from cyclestudio import __version__
from cyclestudio.errors import UserError
from cyclestudio.protocol import SCHEMA

# subcommand -> module
COMMANDS: dict[str, str] = {
    "train": "cyclestudio.jobs.train",
    "plugins": "cyclestudio.jobs.plugins_cmd",
    "devices": "cyclestudio.jobs.devices",
    "translate": "cyclestudio.jobs.translate",
    "export": "cyclestudio.jobs.export",
    "demo": "cyclestudio.jobs.demo",
    "eval": "cyclestudio.jobs.eval",
    "watch": "cyclestudio.jobs.watch",
}


class _Parser(argparse.ArgumentParser):
    """argparse that remembers its error, so a job run for the app can send it as an event."""

    last_error: str | None = None

    def error(self, message: str):  # type: ignore[override]
        _Parser.last_error = message
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, every subcommand included."""
    parser = _Parser(
        prog="cyclestudio",
        description="Unpaired image-to-image translation (CycleGAN). "
        "Run without arguments to open the app.",
    )
    parser.add_argument("--version", action="version", version=f"cyclestudio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    _no_abbreviations(parser)
    return parser


def _no_abbreviations(parser: argparse.ArgumentParser) -> None:
    """Turn off prefix matching here and in every subcommand's parser below.

    `--epoch 3` must be an error, not a silent `--epochs 3`.
    """
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _no_abbreviations(child)


def missing_display() -> str:
    """Why the app cannot open a window here, or "" if it can (or cannot tell).

    Without this, Qt aborts with a misleading "xcb-cursor0 is needed" on a server.
    """
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return ""  # Windows and macOS always have their own window system
    if os.environ.get("QT_QPA_PLATFORM") or os.environ.get("DISPLAY") or os.environ.get(
        "WAYLAND_DISPLAY"
    ):
        return ""
    return (
        "no display to open the app on (neither DISPLAY nor WAYLAND_DISPLAY is set)\n"
        "  hint: run it on a desktop, or with `ssh -X` / an X server and DISPLAY set; on a "
        "server use the subcommands (`cyclestudio --help`: train, translate, watch, ...), "
        "which need no display"
    )


def report(error: UserError, events: bool) -> None:
    """Show a user error: an `error` event for the app, one line on stderr for a person."""
    if events:
        line = {"event": "error", "schema": SCHEMA, "kind": error.kind,
                "message": error.message, "hint": error.hint, **error.details}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    else:
        sys.stderr.write(f"cyclestudio: error: {error.message}\n")
        if error.hint:
            sys.stderr.write(f"  hint: {error.hint}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cyclestudio` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        problem = missing_display()
        if problem:
            sys.stderr.write(f"cyclestudio: error: {problem}\n")
            return 2
        from cyclestudio.gui.app import main as app_main

        return app_main()
    # torch's OpenMP threads otherwise spin while they wait: on a CPU shared with
    # the app or another job, a training step then takes many times longer.
    # Read once when torch loads, so it must be set before any job imports torch.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:
        # The app reads events only: a bad command line must reach it as one too.
        if exit.code and "--events" in argv:
            report(UserError(f"invalid command line: {_Parser.last_error or exit.code}",
                             "see `cyclestudio <command> --help`"), events=True)
        raise
    args._argv = argv  # what `train --gpus N` runs again in each of its processes
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    events = bool(getattr(args, "events", False))
    try:
        return int(args._run(args) or 0)
    except UserError as error:
        report(error, events)
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("cyclestudio: interrupted\n")
        return 130
    except Exception as exc:  # noqa: BLE001 - the boundary of every job: say it, never hang
        from cyclestudio.atomic import disk_full_error

        full = disk_full_error(exc)
        if full is not None:  # not a bug: say which disk, as for any user error
            report(full, events)
            return 2
        return report_internal(exc, events)


def report_internal(exc: Exception, events: bool) -> int:
    """A failure nobody foresaw: an `error` event with the traceback, or the traceback and
    one line for a person. Returns the exit code (1)."""
    import traceback

    text = traceback.format_exc()
    message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    memory = "out of memory" in str(exc).lower() or "can't allocate memory" in str(exc).lower()
    kind = "out_of_memory" if memory else "internal"
    hint = ("close other programs, or use smaller images or --tile" if memory else
            "this is a bug in cyclestudio or in a plugin; the message and traceback say where")
    if events:
        line = {"event": "error", "schema": 1, "kind": kind, "message": message, "hint": hint,
                "traceback": text}
        try:
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()
        except (OSError, ValueError):
            pass  # nobody reads our events any more
    else:
        sys.stderr.write(text)
        sys.stderr.write(f"cyclestudio: error: {message}\n  hint: {hint}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
