"""One self-contained HTML report of everything mlpbench measured.

Data flows one way: results store → tidy frames (:mod:`mlpbench.results`) → analysis
(:mod:`mlpbench.analysis`) → sections (tables and seaborn/matplotlib figures, registered in
:mod:`mlpbench.report.sections`) → one page (jinja2 template, figures embedded as PNG data
URIs with hover spots, tables sortable and filterable, each with its CSV embedded). The page
needs no network. A section without data says so and names the command that produces it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from html import escape
from pathlib import Path

import jinja2

from mlpbench.errors import UsageError
from mlpbench.report.drawing import render_pending
from mlpbench.report.page import ReportData, Section, load_data
from mlpbench.report.provenance import silent_folders
from mlpbench.report.sections import SECTIONS
from mlpbench.results import atomic_write


def _make(make, data: ReportData) -> Section:
    """One section; an unexpected error in it becomes a visible note (and a warning on
    stderr) instead of losing the whole page."""
    try:
        return make(data)
    except Exception as exc:  # noqa: BLE001 - the page must render for any input
        name = make.__name__.removesuffix("_section")
        why = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
        section = Section(name, name.replace("_", " ").title(), empty=(
            f"This section could not be drawn from these inputs ({why}). Please report it."))
        section.failures.append(f"section {name!r} ({why})")
        return section


def build_report(asv_results: str | os.PathLike | None, run_dirs: Sequence[str],
                 out: str | os.PathLike = "report.html", *, title: str = "mlpbench report",
                 failures: list[str] | None = None) -> Path:
    """Write the report page; return its path. What could not be drawn (a section, a
    figure) is shown on the page and, when ``failures`` is given, appended to it."""
    started = time.perf_counter()
    data = load_data(asv_results, run_dirs)
    data.silent = silent_folders(run_dirs, data)  # named on the page and here
    for line in data.silent:
        print(f"mlpbench report: {line}", file=sys.stderr)
        data.load_notes.append(escape(f"Not shown: {line}."))
    ids = {str(m) for f in data.runs.values() if "machine_id" in f
           for m in f["machine_id"].unique()}
    Section.machine_names = {m: data.machine_name(m) for m in ids}
    sections = [_make(make, data) for make in SECTIONS]
    render_pending(sections)
    env = jinja2.Environment(loader=jinja2.PackageLoader("mlpbench.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]))
    html = env.get_template("report.html").render(
        title=title, sections=sections, sources=data.sources,
        generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        build_seconds=time.perf_counter() - started)
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write report {str(path)!r}: {exc.strerror or exc}") from None
    atomic_write(path, html)
    if failures is not None:
        failures.extend(f for section in sections for f in section.failures)
    return path


__all__ = ["SECTIONS", "ReportData", "Section", "build_report", "load_data"]
