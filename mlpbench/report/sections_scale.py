"""Report sections: spurious minima (GD vs SGD, certified end points) and data-parallel scaling."""

from __future__ import annotations

from mlpbench.analysis.distributed import collectives_summary, scaling_table
from mlpbench.report import fig_distributed, fig_minima
from mlpbench.report.page import ReportData, Section

_MINIMA_COLS = ["problem", "budget", "lr", "batch", "optimizer", "runs", "n_global", "frac_global",
                "global_lo", "global_hi", "frac_spurious", "frac_kink", "frac_still_descending"]


def minima_section(d: ReportData) -> Section:
    s = Section("minima", "Spurious minima: does SGD's noise help? (GD vs SGD)")
    summary = d.runs.get("minima_summary")
    if summary is None:
        s.empty = "No spurious-minima study. Run `mlpbench minima --inits 100`."
        return s
    s.notes.append("Every run's end point is polished in fp64 and classified: global (polished "
                   "loss < 1e-8), spurious minimum, saddle, ReLU kink, still descending. The same "
                   "100 initialisations serve every optimizer; intervals are 95% Wilson; the "
                   "paired McNemar tests are in minima_paired.csv.")
    if "frac_still_descending" in summary and (summary["frac_still_descending"] > 0.2).any():
        hi = summary["frac_still_descending"].max()
        s.notes.append(f"Read the fractions as 'at this budget': up to {hi:.0%} of the runs of "
                       "a setting end still descending (frac_still_descending in the table), so "
                       "a run counted as not global may yet reach the global minimum with more "
                       "steps.")
    for problem in sorted(summary["problem"].unique()):
        for budget in ("steps", "evals"):
            part = summary[(summary["problem"] == problem) & (summary["budget"] == budget)]
            if part.empty:
                continue
            if "n_global" in part and part["n_global"].sum() == 0:
                s.notes.append(f"{problem}, equal {budget}: none of the initialisations "
                               "reached the global minimum in any setting; the bars show "
                               "where they ended instead.")
            s.figure(f"{problem}, equal {'steps' if budget == 'steps' else 'gradient evaluations'}"
                     ": where the initialisations ended, every outcome class (hover a "
                     "segment for its count; Wilson intervals in the table)",
                     lambda p=problem, b=budget: fig_minima.minima_outcomes(
                         summary, problem=p, budget=b))
    s.table("Fractions per problem, budget and optimizer (95% Wilson bounds)",
            summary[[c for c in _MINIMA_COLS if c in summary]], name="minima-summary")
    return s


def distributed_section(d: ReportData) -> Section:
    s = Section("distributed", "Data-parallel training (DDP)")
    frame = d.runs.get("distributed")
    if frame is None:
        s.empty = ("No data-parallel runs. Run `mlpbench distributed --backend gloo "
                   "--world-sizes 1,2` (see docs/distributed.md).")
        return s
    coll = d.runs.get("collectives")
    table = scaling_table(frame, coll)
    s.notes.append("Efficiency: samples/s at P workers over P × one worker's. Communication "
                   "share: the exposed all-reduce time (a DDP step minus the same step under "
                   "no_sync) over the step time. Rows marked as projections come from a ring "
                   "all-reduce model on the measured bus bandwidth — a projection, not a "
                   "measurement.")
    s.notes.append("At world size 1 nothing is communicated: the share there is DDP's own "
                   "per-step machinery (gradient bucketing and hooks) against no_sync.")
    for scaling, t in table.groupby("scaling", sort=True):
        s.figure(f"Scaling efficiency against world size — {scaling} scaling",
                 lambda t=t: fig_distributed.scaling_efficiency(t))
        s.figure(f"Communication share of the step against world size — {scaling} scaling",
                 lambda t=t: fig_distributed.comm_share(t))
    if coll is not None and (coll["world_size"] > 1).any():
        s.figure("All-reduce bus bandwidth against message size",
                 lambda: fig_distributed.bus_bandwidth(coll))
        s.table("All-reduce: median and quartiles over rounds", collectives_summary(coll),
                name="collectives")
    s.table("Scaling per network, scaling mode and world size (with projections)", table,
            name="distributed")
    return s
