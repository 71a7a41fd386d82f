"""Report sections that set results side by side: machine vs machine (sweep runs and asv
results, every common benchmark, speedups) and the asv results with their history."""

from __future__ import annotations

import pandas as pd

from mlpbench.analysis.compare import (
    asv_long,
    compare_wide,
    geomean_ratios,
    machine_identities,
    sweep_long,
)
from mlpbench.report import fig_hw
from mlpbench.report.page import ReportData, Section


def _asv_commits(asv: pd.DataFrame) -> pd.Series:
    """The latest commit of each asv machine."""
    if asv.empty or "commit" not in asv:
        return pd.Series(dtype=str)
    latest = asv.sort_values("date").groupby("machine")["commit"].last()
    return latest.dropna().astype(str)


def machines_compare_section(d: ReportData) -> Section:
    s = Section("compare", "Machine vs machine")
    parts = []
    if "sweep" in d.runs and "median_s" in d.runs["sweep"]:
        parts.append(sweep_long(d.runs["sweep"]))
    commits = _asv_commits(d.asv)
    if not d.asv.empty and commits.nunique() <= 1:
        parts.append(asv_long(d.asv))
    elif not d.asv.empty:
        s.notes.append("asv benchmarks are not compared across machines here: their latest "
                       "results come from different commits ("
                       + ", ".join(f"{m}: {c[:8]}" for m, c in commits.items())
                       + "), and a benchmark's code may differ between commits. Run `asv run` "
                       "on one commit on every machine to compare them.")
    long = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    ident = machine_identities(d.hardware, d.asv_machines)
    same = dict(zip(ident["name"], ident["identity"], strict=True))
    if long.empty or long["machine"].map(lambda m: same.get(m, m)).nunique() < 2:
        s.empty = "Only one machine's results are present."
        return s
    # one column per machine: its run id and its asv name are one identity
    long["machine"] = long["machine"].map(lambda m: same.get(m, m).removeprefix("asv:"))
    wide, ref = compare_wide(long)
    if wide.empty:
        s.empty = ("Several machines are present, but no benchmark was measured on more than "
                   "one of them.")
        return s
    geo = geomean_ratios(wide)
    s.notes.append(f"Every benchmark measured on at least two machines ({len(wide):,}); "
                   f"speedup = seconds on {ref} / seconds on the other machine (> 1: the other "
                   "machine is faster). Repeated points of one machine are reduced to their "
                   "median; asv values are the latest commit per machine.")
    if len(geo):
        s.figure(f"Geometric-mean speedup over {ref} per device and phase (asv: per class)",
                 lambda: fig_hw.speedups(geo))
        s.table("Geometric-mean speedup per group", geo, name="speedup-geomean")
    s.table("Seconds per machine and speedup, every common benchmark", wide,
            name="machine-vs-machine")
    return s


def asv_section(d: ReportData) -> Section:
    s = Section("asv", "asv benchmark results")
    if d.asv.empty:
        s.empty = "No asv results given (`--asv-results results/asv`)."
        return s
    a = d.asv
    cols = [c for c in ("machine", "benchmark", "params", "value", "unit", "status", "commit")
            if c in a]
    latest = a[a["date"].fillna(0) >= a.groupby("machine")["date"].transform("max").fillna(0)]
    s.notes.append("asv tracks run one seed (seed 0) per point and asv times are asv's own "
                   "statistic; the run tables above give medians over several seeds.")
    s.table("Latest commit per machine: every benchmark (value in its unit)",
            latest[cols].rename(columns={"params": "parameters"}), name="asv-latest")
    commits = a.groupby("machine")["commit"].nunique()
    if (commits > 1).any():
        ok = a[a["status"] == "ok"]
        hist = ok.pivot_table(index=["machine", "benchmark", "params"], columns="commit",
                              values="value", aggfunc="median")
        order = ok.groupby("commit")["date"].min().sort_values().index
        hist = hist[[c for c in order if c in hist.columns]]
        hist.columns = [str(c)[:8] for c in hist.columns]
        s.table("History per benchmark (columns: commits, oldest first)",
                hist.reset_index().rename(columns={"params": "parameters"}), name="asv-history")
    else:
        s.notes.append("One commit per machine: no history to show yet.")
    return s
