"""The worker event protocol's vocabulary: schema version, event names, control commands.

Jobs write one JSON object per stdout line (``{"event": NAME, "schema": SCHEMA, ...}``)
and read one command per stdin line; docs/events.md documents every field. The app
and the jobs both read this module, so a name changes in one place.
"""

from __future__ import annotations

SCHEMA = 1

# Control lines a running job obeys (stdin, one per line).
PAUSE, RESUME, STOP, SAMPLE = "pause", "resume", "stop", "sample"
COMMANDS = (PAUSE, RESUME, STOP, SAMPLE)

# Every event a job emits, with what it means.
EVENTS = {
    "started": "the job is running (the run folder, device and totals)",
    "progress": "work done so far, speed and time left",
    "validation": "held-out figures of a training run (training only)",
    "sample": "a new sample grid (training only)",
    "checkpoint": "a checkpoint was written (training only)",
    "file": "one input's outcome (translate and watch)",
    "parity": "an exported graph checked against PyTorch on one image (export only)",
    "paused": "the job is paused (a training run released the GPU)",
    "resumed": "the job continues after a pause",
    "warning": "something the user should know; the job goes on",
    "stopped": "the job stopped on request (last event)",
    "finished": "the job did all its work (last event)",
    "error": "the job failed (last event)",
    "estimate": "memory and time a training configuration needs (train --estimate)",
}
TERMINAL = ("finished", "stopped", "error")
