"""Plain-text summaries of stored tables, for the terminal (pure functions)."""

from __future__ import annotations

import math

import pandas as pd

from mlpbench.analysis.crossover import crossover
from mlpbench.analysis.modes import compile_speedup


def sweep_text(frame: pd.DataFrame) -> str:
    """A short summary of a sweep table: row counts, the best point per phase, skips and
    failures, and the CPU/CUDA crossover. Works for any mix of statuses, including none ok."""
    if frame.empty:
        return "rows: none"
    lines = ["rows: " + ", ".join(f"{k} {v}" for k, v in
                                  sorted(frame.groupby("status").size().to_dict().items()))]
    ok = frame[frame["status"] == "ok"]
    if len(ok) and "peak_fraction" in ok:
        best = ok.sort_values("peak_fraction", ascending=False).groupby("phase").head(1)
        for _, r in best.iterrows():
            lines.append(f"best {r['phase']:<10} {r['device']} {r['framework']} "
                         f"P={int(r['params']):,} B={int(r['batch'])}: {r['gflops']:.1f} GFLOP/s "
                         f"= {r['peak_fraction']:.0%} of measured peak, "
                         f"{r['samples_per_s']:.0f} samples/s")
    bad = frame[frame["status"] != "ok"]
    for _, r in bad.drop_duplicates(["device", "framework", "status", "reason"]).head(10).iterrows():
        lines.append(f"{r['status']}: {r['device']} {r['framework']} P={int(r['params']):,}: "
                     f"{r['reason']}")
    for _, r in crossover(frame).iterrows():
        where = (f"P >= {int(r['crossover_params']):,}" if not math.isnan(r["crossover_params"])
                 else "never in this grid")
        lines.append(f"CUDA beats CPU for {r['phase']} ({r['dtype']}, {r['framework']}, "
                     f"B={r['batch']}, {r['mode']}): {where}")
    speed = compile_speedup(frame)
    for (phase, mode), g in speed.groupby(["phase", "mode"]):
        lines.append(f"{mode} vs eager, {phase}: speedup {g['speedup'].min():.2f}x to "
                     f"{g['speedup'].max():.2f}x over {len(g)} points")
    return "\n".join(lines)
