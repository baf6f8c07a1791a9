"""`cyclestudio devices`: the devices training can use (the app asks this as a worker)."""

from __future__ import annotations

import argparse
import json

HELP = "list the devices (CUDA GPUs, Apple MPS, CPU) cyclestudio can train on"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable, for the app")


def run(args: argparse.Namespace) -> int:
    from cyclestudio.core.devices import list_devices, pick_device

    devices = list_devices()
    default = str(pick_device("auto"))
    if args.json:
        print(json.dumps({"devices": devices, "default": default}))
        return 0
    for d in devices:
        memory = f"  {d['memory_bytes'] / 2**30:.1f} GiB" if d["memory_bytes"] else ""
        mark = "  (default)" if d["id"] == default else ""
        print(f"{d['id']:<8} {d['name']}{memory}{mark}")
    return 0
