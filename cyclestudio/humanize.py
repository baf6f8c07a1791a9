"""Numbers as people read them: durations for ETAs and summaries (terminal and app)."""

from __future__ import annotations

import math


def format_duration(seconds: float | None) -> str:
    """1:02:03 or 02:03; "?" when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
