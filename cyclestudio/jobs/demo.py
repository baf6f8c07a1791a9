"""`cyclestudio demo`: a ready project with two generated domains and a known true mapping."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

HELP = "create a demo project (day ↔ dusk scenes, generated here, no downloads)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", nargs="?", default="cyclestudio-demo", metavar="DIR",
                   help="where to create it (default ./cyclestudio-demo)")


def run(args: argparse.Namespace) -> int:
    from cyclestudio.core.demo import create_demo_project, demo_model_path

    folder = create_demo_project(Path(args.folder)).absolute()
    print(f"created the demo project in {folder}")
    steps = (folder / "README.txt").read_text(encoding="utf-8").split("\n\n", 2)[-1].rstrip()
    # The README's commands use paths inside the project: say where to run them.
    print(steps.replace("model can be scored against it:\n",
                        f"model can be scored against it (from the project folder):\n\n"
                        f"  cd {shlex.quote(str(folder))}", 1))
    model = demo_model_path()
    if model:
        test = shlex.quote(str(folder / "data" / "testA"))
        out = shlex.quote(str(folder / "translated"))
        print(f"\na pre-trained demo model ships with cyclestudio:\n"
              f"  cyclestudio translate {shlex.quote(str(model))} {test} --out {out}")
    return 0
