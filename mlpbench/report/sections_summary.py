"""The summary card at the top of the report: the headline facts per machine and device, each
linking to the section that holds its evidence."""

from __future__ import annotations

import html

import pandas as pd

from mlpbench.analysis.compare import machine_identities
from mlpbench.analysis.headline import headline
from mlpbench.report.page import ReportData, Section


def gate_facts(gates: pd.DataFrame) -> pd.DataFrame:
    """One fact per regression gate: its verdict and what it flagged."""
    rows = []
    for _, g in (gates.groupby("run_dir", sort=False) if len(gates) else []):
        c = g.iloc[0]
        code = int(c["exit_code"]) if pd.notna(c["exit_code"]) else -1
        flagged = g[g["verdict"].isin(["regressed", "failed"])]
        what = "; ".join(f"{r.tier} {r.bench} {r.verdict}"
                         + (f" ({r.ratio:.3g}×)" if pd.notna(r.ratio) else "")
                         for r in flagged.itertuples())
        rows.append({"machine": f"regression gate (host {c['host']})", "device": "CI",
                     "topic": f"{c['base_commit']} → {c['head_commit']}",
                     "fact": {0: "passed", 1: "REGRESSED"}.get(code, f"exit {code}")
                     + (f": {what}" if what else ""), "section": "regressions"})
    return pd.DataFrame(rows, columns=["machine", "device", "topic", "fact", "section"])


def summary_section(d: ReportData) -> Section:
    s = Section("summary", "Summary")
    facts = pd.concat([headline(d.runs), gate_facts(d.gates)], ignore_index=True)
    names = dict(zip(*machine_identities(d.hardware, d.asv_machines)[["name", "identity"]]
                     .T.to_numpy(), strict=True)) if d.hardware or d.asv_machines else {}
    if facts.empty:
        machines = ", ".join(sorted(d.asv_machines)) or "none"
        s.html = ("<div class=\"card\" id=\"summary-card\"><p>Only asv results were given "
                  f"(machines: {html.escape(machines)}): see the asv section.</p></div>")
        return s
    items = []
    for (machine, device), g in facts.groupby(["machine", "device"], sort=False):
        label = names.get(machine, machine)
        label = f"{label} ({machine})" if label != machine else machine
        lis = "".join(f"<li><b>{html.escape(r.topic)}</b>: {html.escape(r.fact)} "
                      f"<a href='#{r.section}'>→ {html.escape(r.section)}</a></li>"
                      for r in g.itertuples())
        items.append(f"<div class='machine'><h3>{html.escape(label)} · "
                     f"{html.escape(str(device))}</h3><ul>{lis}</ul></div>")
    s.html = f"<div class=\"card\" id=\"summary-card\">{''.join(items)}</div>"
    return s
