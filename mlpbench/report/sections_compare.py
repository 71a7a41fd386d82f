"""Report sections that set results side by side: machine vs machine (a ranking by geometric
mean over shared benchmarks with intervals, pairwise ratios against a selectable reference, a
machines × benchmark-groups heatmap, every common benchmark) and the asv results with their
history."""

from __future__ import annotations

import html
import json
import math

import pandas as pd

from mlpbench.analysis.compare import (
    comparable,
    compare_wide,
    default_reference,
    heatmap,
    machine_identities,
    pairwise,
    ranking,
)
from mlpbench.report.page import ReportData, Section


def _asv_commits(asv: pd.DataFrame) -> pd.Series:
    """The latest commit of each asv machine."""
    if asv.empty or "commit" not in asv:
        return pd.Series(dtype=str)
    latest = asv.sort_values("date").groupby("machine")["commit"].last()
    return latest.dropna().astype(str)


def machine_labels(d: ReportData) -> dict[str, str]:
    """Every name a machine goes by (run id, asv name, identity) → its identity with CPU
    model and core count (and host where recorded)."""
    ident = machine_identities(d.hardware, d.asv_machines)
    hosts = {str(m): hw.get("hostname") for m, hw in d.hardware.items()}
    labels: dict[str, str] = {}
    for r in ident.itertuples():
        what = ", ".join(str(v) for v in (r.cpu, f"{r.cores} cores" if r.cores else None,
                                          hosts.get(r.name)) if v)
        label = f"{r.identity} ({what})" if what else r.identity
        for key in (r.name, r.name.removeprefix("asv:"), r.identity):
            labels.setdefault(key, label)
    return labels


def machine_table(d: ReportData) -> pd.DataFrame:
    """Seconds per machine (columns) for every benchmark measured on two or more machines."""
    if not hasattr(d, "_machine_table"):
        ident = machine_identities(d.hardware, d.asv_machines)
        long = comparable(d.runs.get("sweep"), d.asv, ident)
        wide = compare_wide(long)[0] if long["machine"].nunique() >= 2 else pd.DataFrame()
        wide.attrs["left_out"] = long.attrs.get("left_out", 0)
        d._machine_table = wide
    return d._machine_table


def _heat_cell(v: float) -> str:
    if not math.isfinite(v):
        return "<td class='h' data-v=''>–</td>"
    t = max(-1.0, min(1.0, math.log2(v) / 2))  # ±4× saturates
    colour = (f"rgba(0,114,178,{t:.2f})" if t > 0 else f"rgba(213,94,0,{-t:.2f})")
    return f"<td class='h' data-v='{v:.6g}' style='background:{colour}'>{v:.2f}</td>"


def heatmap_html(heat: pd.DataFrame, labels: dict[str, str], ref: str) -> str:
    """The machines × groups heatmap as a sortable table with coloured cells."""
    head = "".join(f"<th tabindex='0'>{html.escape(str(c))}</th>" for c in heat.columns)
    rows = "".join(f"<tr><td class='t' data-v='{html.escape(labels.get(m, m))}'>"
                   f"{html.escape(labels.get(m, m))}</td>"
                   + "".join(_heat_cell(float(v)) for v in heat.loc[m]) + "</tr>"
                   for m in heat.index)
    return (f"<div class='caption' id='t-machine-heatmap'>Speedup over {html.escape(ref)} per "
            "benchmark group (blue: faster, orange: slower; colour saturates at 4×)</div>"
            "<div class='tools'><input type='search' placeholder='filter rows' "
            "aria-label='filter rows'></div><div class='scroll'><table class='data sortable'>"
            f"<thead><tr><th class='t' tabindex='0'>machine</th>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table></div>")


def chooser_html(pairs: pd.DataFrame, labels: dict[str, str], ref: str) -> str:
    """A reference selector and the dot-and-interval chart the page's script draws (SVG)."""
    data = [{"m": labels.get(r.machine, r.machine), "r": labels.get(r.reference, r.reference),
             "g": r.geomean_speedup, "lo": None if pd.isna(r.ci_low) else r.ci_low,
             "hi": None if pd.isna(r.ci_high) else r.ci_high, "n": r.benchmarks}
            for r in pairs.itertuples()]
    refs = sorted(set(pairs["reference"]), key=lambda m: labels.get(m, m))
    opts = "".join(f"<option{' selected' if m == ref else ''}>{html.escape(labels.get(m, m))}"
                   "</option>" for m in refs)
    payload = json.dumps(data).replace("</", "<\\/")
    return ("<div class='ratios'><label>Reference machine: <select id='ref-select'>"
            f"{opts}</select></label><div id='ratio-chart' role='img' aria-label='speedup "
            "of each machine over the reference'></div><p class='note'>Dot: geometric mean "
            "over the benchmarks both machines ran of reference seconds / machine seconds, on "
            "a log axis centred on 1 (right of the line: faster than the reference); bar: its "
            "95% Student-t interval over those benchmarks; n: benchmarks in common.</p>"
            f"<script type='application/json' id='pairs-data'>{payload}</script></div>")


def _comparison_notes(d: ReportData, s: Section) -> None:
    commits = _asv_commits(d.asv)
    if not d.asv.empty and commits.nunique() > 1:
        s.notes.append("asv benchmarks are not compared across machines here: their latest "
                       "results come from different commits ("
                       + ", ".join(f"{m}: {c[:8]}" for m, c in commits.items())
                       + "), and a benchmark's code may differ between commits. Run `asv run` "
                       "on one commit on every machine to compare them.")


def machines_compare_section(d: ReportData) -> Section:
    s = Section("compare", "Machine vs machine")
    _comparison_notes(d, s)
    wide = machine_table(d)
    if wide.attrs.get("left_out"):
        s.notes.append(f"{wide.attrs['left_out']:,} sweep rows measured on a busy machine "
                       "(contention flag) are left out of every ratio here.")
    if wide.empty:
        s.empty = ("Fewer than two machines, or no benchmark measured on more than one of "
                   "them.")
        return s
    labels = machine_labels(d)
    ref = default_reference(wide)
    pairs = pairwise(wide)
    rank = ranking(pairs, ref)
    n_machines = pairs["machine"].nunique()
    s.html = chooser_html(pairs, labels, ref)
    if n_machines >= 3:
        s.html += heatmap_html(heatmap(wide, ref), labels, labels.get(ref, ref))
    s.notes.append(f"{n_machines} machines, {len(wide):,} benchmarks measured on at least two "
                   f"of them. The ranking and heatmap use {labels.get(ref, ref)} (the machine "
                   "with the most benchmarks) as reference; the chart's reference can be "
                   "changed above. Repeated points of one machine are reduced to their "
                   "median; asv values are the latest commit per machine.")
    show = rank.assign(machine=rank["machine"].map(lambda m: labels.get(m, m)),
                       reference=rank["reference"].map(lambda m: labels.get(m, m))).rename(
        columns={"ci_low": "95% interval low (×)", "ci_high": "95% interval high (×)",
                 "benchmarks": "benchmarks in common"})
    s.table(f"Ranking: geometric-mean speedup over {labels.get(ref, ref)} (95% interval, "
            "benchmarks in common), fastest first", show, name="machine-ranking")
    if n_machines >= 3:
        matrix = pairs.pivot(index="machine", columns="reference", values="geomean_speedup")
        matrix = matrix.rename(index=lambda m: labels.get(m, m)).reset_index()
        s.table("Pairwise: speedup of the row's machine over the column's (geometric mean)",
                matrix, name="machine-pairs")
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
