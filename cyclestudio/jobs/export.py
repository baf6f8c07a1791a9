"""`cyclestudio export`: a run's generators as one self-describing model file."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write a run's latest generators as one self-describing model file (.csmodel)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="a run folder (or a checkpoint file)")
    p.add_argument("--out", metavar="MODEL", default=None,
                   help="the model file to write (default RUN/model.csmodel)")


def run(args: argparse.Namespace) -> int:
    from cyclestudio.core.modelfile import export_model, read_info

    path = export_model(Path(args.run), Path(args.out) if args.out else None)
    info = read_info(path)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {info.generator} "
          f"{info.options}, {info.a_name} ↔ {info.b_name}, trained at {info.size} px, "
          f"iteration {info.iteration}")
    return 0
