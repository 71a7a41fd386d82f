"""The summary card at the top of the report: the headline facts per machine and device, each
linking to the section that holds its evidence."""

from __future__ import annotations

import html

from mlpbench.analysis.compare import machine_identities
from mlpbench.analysis.headline import headline
from mlpbench.report.page import ReportData, Section


def summary_section(d: ReportData) -> Section:
    s = Section("summary", "Summary")
    facts = headline(d.runs)
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
