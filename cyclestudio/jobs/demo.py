"""`cyclestudio demo`: a ready project with two generated domains and a known true mapping."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "create a demo project (day ↔ dusk scenes, generated here, no downloads)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", nargs="?", default="cyclestudio-demo", metavar="DIR",
                   help="where to create it (default ./cyclestudio-demo)")


def run(args: argparse.Namespace) -> int:
    from cyclestudio.core.demo import create_demo_project, demo_model_path

    folder = create_demo_project(Path(args.folder))
    print(f"created the demo project in {folder}")
    print((folder / "README.txt").read_text(encoding="utf-8").split("\n\n", 2)[-1].rstrip())
    model = demo_model_path()
    if model:
        print(f"\na pre-trained demo model ships with cyclestudio:\n"
              f"  cyclestudio translate {model} {folder / 'data' / 'testA'} --out translated")
    return 0
