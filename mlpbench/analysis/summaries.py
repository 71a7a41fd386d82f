"""Plain-text summaries of stored tables, for the terminal (pure functions)."""

from __future__ import annotations

import math

import pandas as pd

from mlpbench.analysis.crossover import crossover
from mlpbench.analysis.modes import compile_speedup
from mlpbench.measure.contention import flags


def clean_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows without a contention flag (all rows of a table written before the flag)."""
    if "contention" not in frame:
        return frame
    return frame[flags(frame) == ""]


def _yardstick(row: pd.Series) -> str:
    lo, hi = row.get("peak_fraction_lo"), row.get("peak_fraction_hi")
    if lo is not None and hi is not None and lo == lo and hi == hi:
        return f"the matmul yardstick timed beside it (95% CI {lo:.0%}–{hi:.0%})"
    return "measured peak"


def sweep_text(frame: pd.DataFrame) -> str:
    """A short summary of a sweep table: row counts, the best point per phase, skips and
    failures, and the CPU/CUDA crossover. Works for any mix of statuses, including none ok."""
    if frame.empty:
        return "rows: none"
    lines = ["rows: " + ", ".join(f"{k} {v}" for k, v in
                                  sorted(frame.groupby("status").size().to_dict().items()))]
    ok = frame[frame["status"] == "ok"]
    clean = clean_rows(ok)
    if len(clean) < len(ok):
        lines.append(f"{len(ok) - len(clean)} of {len(ok)} measured rows were taken on a busy "
                     "machine (column 'contention' says why); 'best' lines use clean rows only")
    if len(clean) and "peak_fraction" in clean:
        best = clean.sort_values("peak_fraction", ascending=False).groupby("phase").head(1)
        for _, r in best.iterrows():
            lines.append(f"best {r['phase']:<10} {r['device']} {r['framework']} "
                         f"P={int(r['params']):,} B={int(r['batch'])}: {r['gflops']:.1f} GFLOP/s "
                         f"= {r['peak_fraction']:.0%} of {_yardstick(r)}, "
                         f"{r['samples_per_s']:.0f} samples/s")
    elif len(ok):
        lines.append("no clean row: no 'best' point and no fraction of peak is stated")
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
