"""The report's building blocks: a section, the data it reads, table formatting.

Data flows one way: results store → tidy frames (:mod:`mlpbench.results`) → tables and
figures (:mod:`mlpbench.report.figures`) → one page (jinja2 template, figures embedded as
PNG data URIs). A section without data says so and names the command that produces it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mlpbench.errors import UsageError
from mlpbench.report import figures as F
from mlpbench.results import load_asv, load_hardware, load_runs


@dataclass
class Section:
    """One report section: prose, tables (HTML) and figures (data URIs)."""

    key: str
    title: str
    empty: str | None = None  # why there is no data, and how to get it
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, str]] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)

    def table(self, caption: str, frame: pd.DataFrame, **kw: Any) -> None:
        if "run_dir" in frame and frame["run_dir"].nunique() <= 1:
            frame = frame.drop(columns="run_dir")
        self.tables.append((caption, _html_table(frame, **kw)))

    def figure(self, caption: str, draw: Callable[[], Any]) -> None:
        self.figures.append((caption, F.to_data_uri(draw())))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:,.0f}" if abs(v) >= 1e5 else f"{v:.4g}"
    return str(v)


def _html_table(frame: pd.DataFrame, max_rows: int = 60) -> str:
    shown = frame.head(max_rows)
    html = shown.to_html(index=False, classes="data", border=0, na_rep="–",
                         formatters={c: _fmt for c in shown.columns})
    if len(frame) > max_rows:
        html += f"<p class='more'>… {len(frame) - max_rows} more rows in the CSV.</p>"
    return html


@dataclass
class ReportData:
    """Everything the report reads, as tidy frames."""

    runs: dict[str, pd.DataFrame]
    hardware: dict[str, dict[str, Any]]
    asv: pd.DataFrame
    asv_machines: dict[str, dict]
    sources: list[str]


def load_data(asv_results: str | os.PathLike | None, run_dirs: Sequence[str]) -> ReportData:
    """Read asv results and run folders; no input at all is a :class:`UsageError`."""
    if not asv_results and not run_dirs:
        raise UsageError("nothing to report: give --asv-results DIR and/or --runs DIR")
    runs = load_runs(run_dirs) if run_dirs else {}
    hardware = load_hardware(run_dirs) if run_dirs else {}
    asv, machines = (load_asv(asv_results) if asv_results else (pd.DataFrame(), {}))
    if not runs and asv.empty:
        raise UsageError("the given folders hold no results (all tables empty)")
    sources = [str(d) for d in run_dirs] + ([str(asv_results)] if asv_results else [])
    return ReportData(runs, hardware, asv, machines, sources)
