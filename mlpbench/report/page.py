"""The report's building blocks: a section, the data it reads, tables.

Tables are plain HTML that the page's script makes sortable and filterable: each cell keeps
its raw value in ``data-v`` (so "129.6 TiB" sorts after "269.2 GiB"), each column shows one
number format, headers carry units, and each table links its full data as an embedded CSV.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mlpbench.analysis.compare import machine_identities
from mlpbench.errors import UsageError
from mlpbench.report.style import Rendered
from mlpbench.results import (
    load_asv,
    load_gates,
    load_hardware,
    load_runs,
    separate_unlike,
)
from mlpbench.units import format_bytes

#: column → header with its unit (columns not listed keep their name)
HEADERS = {
    "machine_id": "machine",
    "median_s": "median (s)", "iqr_s": "IQR (s)", "gflops": "GFLOP/s",
    "peak_gflops": "peak GFLOP/s", "peak_fraction": "fraction of peak",
    "samples_per_s": "samples/s", "params": "P (parameters)", "batch": "batch B",
    "width": "width n_h", "depth": "depth L", "input_dim": "input d",
    "time_median": "time median (s)", "time_q25": "time q25 (s)", "time_q75": "time q75 (s)",
    "steps_median": "steps median", "steps_q25": "steps q25", "steps_q75": "steps q75",
    "evals_median": "grad evals median", "evals_q25": "grad evals q25",
    "evals_q75": "grad evals q75", "final_loss_median": "final train loss (median)",
    "time_to_target": "time to target (s)", "final_loss": "final train loss",
    "lr": "learning rate η", "torch_s": "torch (s)", "keras_s": "keras (s)",
    "keras/torch": "keras / torch (×)", "crossover_params": "crossover P",
    "exponent": "exponent k", "r2": "r²", "p_min": "fit P min", "p_max": "fit P max",
    "geomean_speedup": "geometric-mean speedup (×)", "value_s": "value (s)",
}


@dataclass
class Section:
    """One report section: facts, prose, tables (HTML) and figures (data URIs)."""

    key: str
    title: str
    empty: str | None = None  # why there is no data, and how to get it
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, str]] = field(default_factory=list)
    figures: list[tuple[str, Rendered]] = field(default_factory=list)
    html: str = ""  # free HTML placed first (the summary card)
    #: figures to draw, in order: (caption, draw) until :func:`render_pending` draws them
    pending: list[tuple[str, Callable[[], Any]]] = field(default_factory=list, repr=False)
    #: what could not be drawn in it (the section itself, a figure), one line each
    failures: list[str] = field(default_factory=list)

    #: machine id -> the name it is shown by in tables (set per build by ``build_report``)
    machine_names: ClassVar[dict[str, str]] = {}

    def table(self, caption: str, frame: pd.DataFrame, **kw: Any) -> None:
        if "run_dir" in frame:  # a run folder is named by its last two parts, never a path
            frame = (frame.drop(columns="run_dir") if frame["run_dir"].nunique() <= 1 else
                     frame.assign(run_dir=frame["run_dir"].map(short_name)))
        if "machine_id" in frame and (frame["machine_id"] == "unknown").all():
            frame = frame.drop(columns="machine_id")
        elif "machine_id" in frame and self.machine_names:  # a name, with the id beside it
            frame = frame.assign(machine_id=frame["machine_id"].astype(str).map(
                lambda m: self.machine_names.get(m, m)))
        self.tables.append((caption, html_table(frame, **kw)))

    def figure(self, caption: str, draw: Callable[[], Any]) -> None:
        """Add a figure; ``draw()`` returns its Axes and runs later, maybe in a worker."""
        self.pending.append((caption, draw))


def short_name(path: Any) -> str:
    """A run folder as its last two path parts (``machine/sweep``): no filesystem paths."""
    return "/".join(str(path).rstrip("/").split(os.sep)[-2:])


def column_format(values: pd.Series, name: str = "") -> Callable[[Any], str]:
    """One formatter for a whole column: SI bytes for ``*bytes*`` columns, thousands
    separators for integers and large numbers, three significant digits otherwise."""
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)) \
            or pd.api.types.is_bool_dtype(values):
        return lambda v: "–" if _missing(v) else str(v)
    num = pd.to_numeric(values, errors="coerce").astype(float)
    finite = num[np.isfinite(num)]
    if "bytes" in name or name.endswith("_rss"):
        return lambda v: "–" if _missing(v) else format_bytes(int(v))
    if name == "peak_fraction" or name.startswith(("fraction", "success")) or \
            name.startswith("ci_"):
        return lambda v: "–" if _missing(v) else f"{float(v):.0%}"
    if len(finite) and (finite == finite.round()).all() and finite.abs().max() < 1e15:
        return lambda v: "–" if _missing(v) else f"{int(v):,}"
    pos = finite[finite != 0].abs()
    if len(pos) and pos.max() / pos.min() > 1e5:  # mixed magnitudes (units): per value
        return lambda v: "–" if _missing(v) else _sig3(float(v))
    if len(finite) and finite.abs().max() >= 1000:  # thousands separators, one precision
        digits = 0 if finite.abs().min() >= 100 else 1 if finite.abs().min() >= 1 else 3
        return lambda v: "–" if _missing(v) else f"{float(v):,.{digits}f}"
    return lambda v: "–" if _missing(v) else _sig3(float(v))


def _sig3(v: float) -> str:
    """Three significant digits without an exponent for 1e-6 ≤ |v| < 1e6."""
    if math.isfinite(v) and 1000 <= abs(v) < 1e15:
        return f"{v:,.0f}"
    if not math.isfinite(v) or v == 0 or not 1e-6 <= abs(v) < 1e6:
        return f"{v:.3g}"
    return np.format_float_positional(v, precision=3, unique=False, fractional=False,
                                      trim="-")


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def csv_uri(frame: pd.DataFrame) -> str:
    """The frame as a CSV data URI (the download link of a table)."""
    data = frame.to_csv(index=False).encode("utf-8")
    return "data:text/csv;charset=utf-8;base64," + base64.b64encode(data).decode("ascii")


def header(name: Any) -> str:
    """A column's header: its unit-bearing name, else the raw name in words (``base_median_s``
    → "base median (s)")."""
    name = str(name)
    if name in HEADERS:
        return HEADERS[name]
    words = name.replace("_", " ")
    return words[:-2] + " (s)" if words.endswith(" s") else words


def constant_columns(frame: pd.DataFrame) -> list[str]:
    """Columns with one value in every row (of a table of two or more rows): said once in
    the caption, not repeated on every row."""
    if len(frame) < 2:
        return []
    const = [c for c in frame.columns if frame[c].nunique(dropna=False) == 1]
    return const[1:] if len(const) == len(frame.columns) else const


def html_table(frame: pd.DataFrame, max_rows: int | None = None, name: str = "table") -> str:
    """A sortable, filterable HTML table of every row (the page pages through them) with a
    CSV download of all its rows; constant columns are stated once above it."""
    frame = frame.reset_index(drop=True)
    const = constant_columns(frame)
    shown = frame.drop(columns=const).head(max_rows) if max_rows else frame.drop(columns=const)
    fmts = {c: column_format(shown[c], str(c)) for c in shown.columns}
    text = {c: not (pd.api.types.is_numeric_dtype(shown[c])
                    or pd.api.types.is_bool_dtype(shown[c])) for c in shown.columns}
    head = "".join(f"<th tabindex='0'{' class=t' if text[c] else ''}>"
                   f"{html.escape(header(c))}</th>" for c in shown.columns)
    body = []
    for row in shown.itertuples(index=False):
        cells = []
        for c, v in zip(shown.columns, row, strict=True):
            raw = "" if _missing(v) else (v if isinstance(v, int | float | np.number)
                                          else html.escape(str(v)))
            cells.append(f'<td{" class=t" if text[c] else ""} data-v="{raw}">'
                         f'{html.escape(fmts[c](v))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (f"<p class='more'>{len(frame) - len(shown):,} more rows in the CSV.</p>"
            if len(frame) > len(shown) else "")
    same = "; ".join(f"{header(c)}: {column_format(frame[c], str(c))(frame[c].iloc[0]) or '–'}"
                     for c in const)
    same = f"<p class='same'>Same in every row — {html.escape(same)}</p>" if same else ""
    slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower())[:60].strip("-")
    return (f"{same}<div class='tools' id='t-{slug or 'table'}'><input type='search' "
            "placeholder='filter rows (all words)' aria-label='filter rows'> "
            f"<a download='{slug or 'table'}.csv' "
            f"href='{csv_uri(frame)}'>CSV ({len(frame):,} rows)</a></div>"
            f"<div class='scroll'><table class='data sortable'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>{more}")


@dataclass
class ReportData:
    """Everything the report reads, as tidy frames."""

    runs: dict[str, pd.DataFrame]
    hardware: dict[str, dict[str, Any]]
    asv: pd.DataFrame
    asv_machines: dict[str, dict]
    sources: list[str]
    gates: pd.DataFrame = field(default_factory=pd.DataFrame)  # regression-gate verdicts
    #: what loading decided (e.g. runs of one machine kept apart): shown under Machines
    load_notes: list[str] = field(default_factory=list)
    #: run folders (or tables below them) given that contributed nothing: named on the page
    silent: list[str] = field(default_factory=list)

    def machine_name(self, machine_id: Any) -> str:
        """The name a machine is shown by (its asv name when one matches), with its id."""
        if not hasattr(self, "_names"):
            ids = machine_identities(self.hardware, self.asv_machines)
            self._names = dict(zip(ids["name"], ids["identity"], strict=True))
        name = self._names.get(str(machine_id), str(machine_id))
        return name if name == str(machine_id) else f"{name} ({machine_id})"


def load_data(asv_results: str | os.PathLike | None, run_dirs: Sequence[str]) -> ReportData:
    """Read asv results and run folders; no input at all is a :class:`UsageError`.

    The same folder given twice is read once; rows repeated across folders (two runs of one
    machine, resumed or merged runs) are kept and aggregated by each section."""
    if not asv_results and not run_dirs:
        raise UsageError("nothing to report: give --asv-results DIR and/or --runs DIR")
    run_dirs = list(dict.fromkeys(os.path.realpath(d) for d in run_dirs))
    runs = load_runs(run_dirs) if run_dirs else {}
    hardware = load_hardware(run_dirs) if run_dirs else {}
    runs, hardware, unlike = separate_unlike(runs, hardware)
    asv, machines = (load_asv(asv_results) if asv_results else (pd.DataFrame(), {}))
    gates = load_gates(run_dirs)
    if not runs and asv.empty and gates.empty:
        raise UsageError("the given folders hold no results (all tables empty)")
    for kind, frame in runs.items():
        if "machine_id" in frame:
            frame["machine_id"] = frame["machine_id"].fillna("unknown").astype(str)
        else:
            runs[kind] = frame.assign(machine_id="unknown")
    sources = [short_name(d) for d in run_dirs] + (
        ["asv results"] if asv_results else [])
    return ReportData(runs, hardware, asv, machines, sources, gates, unlike)
