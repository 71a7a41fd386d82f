"""Drawing the report's figures, in parallel where the machine allows.

Sections register each figure as a ``draw`` callable (:meth:`Section.figure`); drawing and
PNG encoding are most of a report's build time, so :func:`render_pending` runs them in forked
worker processes (one per core, at most ``$MLPBENCH_REPORT_WORKERS``) that inherit the
callables and return only the encoded image. A figure that fails becomes a note in its
section (and in its ``failures``); the rest of the page renders.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from mlpbench.report.page import Section
from mlpbench.report.style import Rendered, render

#: the draw callables of the current build, inherited by forked workers
_DRAWS: list[Callable[[], Any]] = []


def _draw(i: int) -> Rendered | str:
    try:
        return render(_DRAWS[i]())
    except Exception as exc:  # noqa: BLE001 - one figure must not lose the page
        return f"{type(exc).__name__}: {exc}"


def workers() -> int:
    """Worker processes for drawing: ``$MLPBENCH_REPORT_WORKERS``, else the usable cores."""
    raw = os.environ.get("MLPBENCH_REPORT_WORKERS", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)


def render_pending(sections: Sequence[Section]) -> None:
    """Draw every section's pending figures into ``section.figures``, in order."""
    jobs = [(s, caption) for s in sections for caption, _ in s.pending]
    _DRAWS[:] = [draw for s in sections for _, draw in s.pending]
    n = min(workers(), len(_DRAWS))
    try:
        if n > 1 and "fork" in multiprocessing.get_all_start_methods():
            with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork")) as pool:
                results = list(pool.map(_draw, range(len(_DRAWS))))
        else:
            results = [_draw(i) for i in range(len(_DRAWS))]
    finally:
        _DRAWS.clear()
    for (section, caption), result in zip(jobs, results, strict=True):
        if isinstance(result, Rendered):
            section.figures.append((caption, result))
        else:
            section.failures.append(f"figure {caption[:60]!r} ({result[:200]})")
            section.notes.append(f"A figure could not be drawn from these inputs ({caption}: "
                                 f"{result}). Please report it.")
    for section in sections:
        section.pending.clear()
