"""`cyclestudio export`: a run's generators as a .csmodel, or as ONNX or TorchScript graphs.

A .csmodel holds both directions and is cyclestudio's own format. ONNX and
TorchScript write one standard graph per direction, each checked against PyTorch on
random and real images at two sizes before it is kept (core/export_formats.py).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cyclestudio import options

HELP = ("write a run's generators as a self-describing model file (.csmodel), or as "
        "ONNX or TorchScript graphs checked against PyTorch")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="MODEL_OR_RUN",
                   help="a run folder, a checkpoint, or (for onnx and torchscript) a .csmodel")
    p.add_argument("--out", metavar="PATH", default=None,
                   help="the file to write (default: beside the model, e.g. RUN/model.csmodel; "
                        "with --direction both, PATH.onnx gives PATH_a2b.onnx and PATH_b2a.onnx)")
    options.add_arguments(p, options.EXPORT)
    p.add_argument("--events", action="store_true", help="JSON-lines events for the app")


def run(args: argparse.Namespace) -> int:
    from cyclestudio.core.export_formats import export
    from cyclestudio.jobs.events import Events

    options.fill_defaults(args, options.EXPORT)
    events = Events(args.events, job="export")  # the terminal's lines: jobs/terminal.py
    started = time.perf_counter()
    events.emit("started", model=str(Path(args.run).absolute()), format=args.format,
                direction=args.direction)
    files = export(Path(args.run), args.format, args.direction,
                   Path(args.out) if args.out else None,
                   on_check=lambda c: events.emit("parity", **c.to_json()))
    events.emit("finished", files=[str(f.path.absolute()) for f in files],
                seconds=round(time.perf_counter() - started, 2))
    return 0
