"""The summary card at the top of the report: five statements (fastest against peak, the
Newton wall, the fastest optimizer at defaults and tuned, machine against machine, what was not
measured), each generated from the table its section shows and linked to it; below, every
headline fact per machine and device, collapsed."""

from __future__ import annotations

import html

import pandas as pd

from mlpbench.analysis.card import (
    machine_statement,
    missing_statement,
    newton_statement,
    optimizer_statement,
    peak_statement,
)
from mlpbench.analysis.compare import pairwise
from mlpbench.analysis.headline import headline, newton_facts
from mlpbench.report.page import ReportData, Section
from mlpbench.report.sections_compare import machine_labels, machine_table


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


def card_statements(d: ReportData) -> list[dict]:
    """The five statements, each from the table its section shows."""
    names = machine_labels(d)
    wide = machine_table(d)
    pairs = pairwise(wide) if len(wide) else pd.DataFrame(columns=["machine", "reference"])
    cost = d.runs.get("newton_cost")
    newton = newton_facts(cost) if cost is not None and len(cost) else []
    return [peak_statement(d.runs, names), newton_statement(newton, names),
            optimizer_statement(d.runs), machine_statement(pairs, names),
            missing_statement(d.runs, getattr(d, "silent", []))]


def _details(d: ReportData) -> str:
    """Every headline fact per machine and device, collapsed."""
    facts = pd.concat([headline(d.runs), gate_facts(d.gates)], ignore_index=True)
    names = machine_labels(d)
    items = []
    for (machine, device), g in facts.groupby(["machine", "device"], sort=False):
        lis = "".join(f"<li><b>{html.escape(r.topic)}</b>: {html.escape(r.fact)} "
                      f"<a href='#{r.section}'>→ {html.escape(r.section)}</a></li>"
                      for r in g.itertuples())
        items.append(f"<details class='machine'><summary>{html.escape(names.get(machine, machine))}"
                     f" · {html.escape(str(device))} ({len(g)} facts)</summary><ul>{lis}</ul>"
                     "</details>")
    return "".join(items)


#: statements whose table carries its own anchor (``t-<name>``); the others link the section
_TABLE_ANCHORS = {"peak", "optimizer", "machines"}


def _anchor(st: dict) -> str:
    return f"t-{st['table']}" if st["key"] in _TABLE_ANCHORS else st["section"]


def summary_section(d: ReportData) -> Section:
    s = Section("summary", "Summary")
    lis = "".join(f"<li data-card='{st['key']}'><b>{html.escape(st['topic'])}</b>: "
                  f"{html.escape(st['text'])} <a href='#{_anchor(st)}'>→ evidence</a></li>"
                  for st in card_statements(d))
    s.html = (f"<div class=\"card\" id=\"summary-card\"><ul class='five'>{lis}</ul></div>"
              f"<div class='details'>{_details(d)}</div>")
    return s
