"""Report section: execution modes — torch.compile against eager, thread scaling, precision,
and the roofline. Comparisons come from the execution-mode study's tables (``modes_*.csv``,
``scripts/bench_modes.py``) and from any sweep that measured more than one mode, precision or
thread count (``mlpbench sweep --modes eager,compile --threads 1,2 --dtypes fp32,bf16``)."""

from __future__ import annotations

import pandas as pd

from mlpbench.analysis.card import mode_comparison
from mlpbench.report import fig_modes
from mlpbench.report.page import ReportData, Section

_NOTE = ("Each comparison is made inside one run, where the two settings of a network are "
         "measured back to back in fresh processes; lines show the median over runs and error "
         "bars the min–max over runs (none with one run). Speedup = the baseline's median time "
         "over the setting's: above 1 the setting is faster.")


def comparison(d: ReportData, kind: str, *studies: str) -> pd.DataFrame:
    """The study tables of ``kind`` plus the same comparison over the sweep rows (the summary
    card reads the same table)."""
    return mode_comparison(d.runs, kind, *studies)


def _series(t: pd.DataFrame) -> pd.Series:
    label = ("d=" + t["input_dim"].astype(int).astype(str) + ", L=" +
             t["depth"].astype(int).astype(str) + ", B=" + t["batch"].astype(int).astype(str))
    if "threads" in t and t["threads"].nunique() > 1:
        label = label + ", " + t["threads"].astype(int).astype(str) + " thr"
    return label


def _per_machine(table: pd.DataFrame):
    if table.empty:
        return []
    if "machine_id" not in table:
        return [("", table)]
    return list(table.groupby("machine_id", sort=True))


_COMPILE_NOTE = ("compile_s_first: one-off compile time in the first run (the cold inductor "
                 "cache when the study started empty); compile_s: its median over runs (later "
                 "runs reuse the on-disk cache).")
_PRECISION_NOTE = ("fraction of peak: of the matmul peak measured in that precision (`mlpbench "
                   "peak --mode bf16`); bf16-autocast is compared with the bf16 peak. A CPU "
                   "without a bf16 matrix unit converts bf16 to fp32.")

_COLS = ["machine_id", "framework", "phase", "mode", "dtype", "threads", "params",
         "input_dim", "width", "depth", "batch", "reps", "base_median_s", "median_s", "speedup",
         "speedup_min", "speedup_max", "efficiency", "efficiency_min", "efficiency_max",
         "compile_s_first", "compile_s", "peak_fraction", "gflops"]


def _show(t: pd.DataFrame) -> pd.DataFrame:
    return t[[c for c in _COLS if c in t]]


def modes_section(d: ReportData) -> Section:
    s = Section("modes", "Execution modes: torch.compile, threads, precision, roofline")
    compiled = comparison(d, "compile", "modes_compile", "modes_preset")
    threads = comparison(d, "threads", "modes_threads")
    precision = comparison(d, "precision", "modes_precision")
    points = d.runs.get("modes_roofline_points")
    if compiled.empty and threads.empty and precision.empty and points is None:
        s.empty = ("No execution-mode comparison. Run `mlpbench sweep --modes eager,compile` "
                   "(or `--threads 1,2`, `--dtypes fp32,bf16,bf16-autocast`), or "
                   "`python scripts/bench_modes.py compile` for the study.")
        return s
    s.notes.append(_NOTE)
    compiled = compiled.assign(series=_series(compiled)) if len(compiled) else compiled
    for table, figure, draw, note, caption, name in (
            (compiled, "torch.compile (inductor) over eager against P, per phase",
             lambda t: fig_modes.speedup_panels(t, ylabel="compile speedup over eager (×)"),
             _COMPILE_NOTE, "torch.compile against eager: steady-state time per call (s), "
             "speedup, compile time (s)", "modes-compile"),
            (threads, "Parallel efficiency against torch threads", fig_modes.thread_efficiency,
             None, "Thread scaling: time per call (s) against the fewest threads, speedup and "
             "parallel efficiency", "modes-threads"),
            (precision, "Precision: speedup over fp32 per phase", fig_modes.precision_bars,
             _PRECISION_NOTE, "Precision against fp32: time per call (s), speedup, fraction "
             "of that precision's peak", "modes-precision")):
        for mid, t in _per_machine(table):
            s.figure(f"{figure} — {d.machine_name(mid)}", lambda t=t, draw=draw: draw(t))
        if len(table):
            if note:
                s.notes.append(note)
            s.table(caption, _show(table), name=name)
    _roofline(s, d, points)
    return s


def _roofline(s: Section, d: ReportData, points: pd.DataFrame | None) -> None:
    roof = d.runs.get("modes_roofline")
    if points is None or points.empty or "bandwidth_gbs" not in points:
        return
    keys = [k for k in ("machine_id", "phase", "dtype", "params", "width", "batch") if k in points]
    points = points.groupby(keys, as_index=False, dropna=False).agg(
        intensity=("intensity", "first"), gflops=("gflops", "median"),
        peak_gflops=("peak_gflops", "median"), bandwidth_gbs=("bandwidth_gbs", "median"),
        roof_fraction=("roof_fraction", "median"), bound=("bound", "first"))
    for mid, p in _per_machine(points):
        peak = float(p["peak_gflops"].median())
        bw = float(p["bandwidth_gbs"].median())
        s.figure(f"Roofline at 1 thread: measured GFLOP/s (median over runs) against "
                 f"arithmetic intensity, eager fp32; roof from the 1-thread peak "
                 f"({peak:,.0f} GFLOP/s) and bandwidth ({bw:,.1f} GB/s) — "
                 f"{d.machine_name(mid)}",
                 lambda p=p, peak=peak, bw=bw: fig_modes.roofline(p, peak_gflops=peak,
                                                                 bandwidth_gbs=bw))
    s.notes.append("Roofline: intensity = matmul FLOPs over the bytes of weights, activations "
                   "and (training) gradients moved once; the roof is min(peak, intensity × "
                   "measured bandwidth), both measured on the machine (bandwidth: the better of a STREAM-like copy and triad).")
    if roof is not None and len(roof):
        s.table("Where each phase stops being memory-bound (widths below this are limited by "
                "memory bandwidth, under the traffic model)", roof.drop(
                    columns=["run_dir"], errors="ignore"), name="modes-roofline")
