"""Units and number formats used everywhere: bytes, seconds, counts (one definition each)."""

from __future__ import annotations

import math

_SECONDS = (("years", 365.25 * 86400), ("days", 86400.0), ("hours", 3600.0), ("min", 60.0))


def format_bytes(n: float) -> str:
    """Binary-prefixed size, e.g. ``302.0 TiB``; ``–`` for a missing value."""
    if n is None or (isinstance(n, float) and not math.isfinite(n)):
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if abs(n) < 1024 or unit == "EiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def human_seconds(s: float) -> str:
    """``s`` in the largest fitting unit with the raw seconds beside it: ``3.5 years (1.1e+08 s)``."""
    if s is None or not math.isfinite(s):
        return "–"
    for unit, size in _SECONDS:
        if s >= size:
            return f"{s / size:,.1f} {unit} ({s:.3g} s)"
    return f"{s:.3g} s"


def format_count(n: float) -> str:
    """An integer count with thousands separators (``9,111,001``)."""
    if n is None or (isinstance(n, float) and not math.isfinite(n)):
        return "–"
    return f"{int(n):,}"
