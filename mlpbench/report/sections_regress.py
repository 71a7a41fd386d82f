"""Report section: regressions — the latest ``mlpbench regress`` verdicts (``gate.json`` in a
run folder) and, where asv results hold several commits of one machine, each benchmark's
history across those commits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlpbench.report.page import ReportData, Section
from mlpbench.report.style import MAX_SERIES, hover, legend_outside, new_axes, series_style

_ORDER = {"regressed": 0, "failed": 1, "improved": 2, "unchanged": 3}


def history(asv: pd.DataFrame) -> pd.DataFrame:
    """Per machine, benchmark and parameters with ``ok`` values at ≥ 2 commits: the commits
    in date order with ``rel`` (value over the oldest commit's) and ``step`` (over the
    previous commit's)."""
    need = {"benchmark", "machine", "commit", "date", "value", "status"}
    if asv.empty or not need <= set(asv):
        return pd.DataFrame()
    ok = asv[(asv["status"] == "ok") & asv["value"].notna() & asv["commit"].notna()]
    ok = (ok.groupby(["machine", "benchmark", "params", "commit"], as_index=False)
          .agg(value=("value", "median"), date=("date", "max"), unit=("unit", "first")))
    ok = ok.sort_values(["machine", "benchmark", "params", "date"], ignore_index=True)
    key = ["machine", "benchmark", "params"]
    ok = ok[ok.groupby(key)["commit"].transform("nunique") >= 2]
    if ok.empty:
        return ok
    ok["order"] = ok.groupby(key).cumcount()
    ok["rel"] = ok["value"] / ok.groupby(key)["value"].transform("first")
    ok["step"] = ok["value"] / ok.groupby(key)["value"].shift()
    return ok.reset_index(drop=True)


def latest_changes(hist: pd.DataFrame) -> pd.DataFrame:
    """One row per benchmark: commits measured, oldest, previous and latest value, and the
    latest / previous ratio (sorted: largest change first)."""
    key = ["machine", "benchmark", "params"]
    g = hist.groupby(key)
    out = g.agg(commits=("commit", "nunique"), unit=("unit", "first"),
                oldest=("value", "first"), latest=("value", "last"),
                latest_commit=("commit", "last")).reset_index()
    out["previous"] = g["value"].nth(-2).to_numpy()
    out["latest/previous"] = out["latest"] / out["previous"]
    out["latest_commit"] = out["latest_commit"].astype(str).str[:8]
    out = out.assign(_k=np.abs(np.log(out["latest/previous"].astype(float))))
    return out.sort_values("_k", ascending=False).drop(columns="_k").reset_index(drop=True)


def history_figure(hist: pd.DataFrame, names: list[tuple[str, str]], machine: str):
    """Value relative to the oldest commit against commit order, one line per benchmark."""
    ax = new_axes((9.0, 3.8), margins=(0.85, 4.2, 0.9, 0.2))
    commits = (hist[hist["machine"] == machine].drop_duplicates("commit")
               .sort_values("date")["commit"].tolist())
    pos = {c: i for i, c in enumerate(commits)}
    for i, (bench, params) in enumerate(names):
        g = hist[(hist["machine"] == machine) & (hist["benchmark"] == bench)
                 & (hist["params"] == params)]
        x = g["commit"].map(pos)
        label = f"{bench}({params})" if params else bench
        ax.plot(x, g["rel"], label=label[:60], lw=1.4, ms=5, **series_style(i))
        hover(ax, x, g["rel"], [f"{label} @ {str(r.commit)[:8]}: {r.value:.4g} {r.unit or ''} "
                                f"({r.rel:.3g}× the oldest)" for r in g.itertuples()])
    ax.axhline(1.0, color="grey", lw=1, ls=":")
    ax.set_xticks(range(len(commits)), [str(c)[:8] for c in commits], rotation=30,
                  fontsize=9)
    ax.set(xlabel="commit (oldest → newest)", ylabel="value / oldest commit's (×)",
           yscale="log")
    legend_outside(ax, "benchmark")
    return ax


def regress_section(d: ReportData) -> Section:
    s = Section("regressions", "Regressions: gate verdicts and benchmark history")
    gates, hist = d.gates, history(d.asv)
    if gates.empty and hist.empty:
        s.empty = ("No regression data. `mlpbench regress BASE HEAD --out DIR` writes the "
                   "gate's verdicts (then `mlpbench report --runs DIR`); asv results of two or "
                   "more commits of one machine (`asv run HASH1..HASH2`) give each "
                   "benchmark's history.")
        return s
    for _, g in gates.groupby("run_dir", sort=False):
        c = g.iloc[0]
        verdict = {0: "passed (exit 0)", 1: "REGRESSED (exit 1)"}.get(
            int(c["exit_code"]) if pd.notna(c["exit_code"]) else -1, "did not finish")
        load = f", 1-minute load {c['load1']:.1f}" if pd.notna(c["load1"]) else ""
        s.notes.append(f"Gate {c['base_commit']} → {c['head_commit']} on host "
                       f"{c['host']}: {verdict}, {c['seconds']:,.0f} s{load}. Tiers: exact "
                       "counts (any change), instruction counts (callgrind; by default a ratio "
                       "> 1.02), paired time (by default a median ratio > 1.3 with its 95% "
                       "bootstrap interval above 1).")
        table = g.assign(_o=g["verdict"].map(_ORDER).fillna(9)).sort_values(["_o", "tier"])
        s.table(f"Verdicts of the gate {c['base_commit']} → {c['head_commit']} "
                "(ratio = head / base; low–high: its 95% interval)",
                table[["tier", "bench", "verdict", "base", "head", "ratio", "low", "high",
                       "note"]], name=f"gate-{c['head_commit']}")
    if not hist.empty:
        changes = latest_changes(hist)
        for machine, m in changes.groupby("machine", sort=True):
            top = list(zip(m["benchmark"], m["params"], strict=True))[:MAX_SERIES]
            s.figure(f"History of the {len(top)} benchmarks that changed most at the latest "
                     f"commit — machine {machine}",
                     lambda machine=machine, top=top: history_figure(hist, top, machine))
        s.table("Every benchmark measured at ≥ 2 commits: oldest, previous and latest value "
                "(in the benchmark's unit) and latest / previous", changes,
                name="asv-history")
    elif not d.asv.empty:
        s.notes.append("The asv results hold one commit per machine: no history to draw.")
    return s
