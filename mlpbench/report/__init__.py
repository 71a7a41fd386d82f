"""One self-contained HTML report of everything mlpbench measured.

Data flows one way: results store → tidy frames (:mod:`mlpbench.results`) → analysis
(:mod:`mlpbench.analysis`) → tables and figures (:mod:`mlpbench.report.figures`) → one page
(jinja2 template, figures embedded as PNG data URIs). A section without data says so and
names the command that produces it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import jinja2

from mlpbench.errors import UsageError
from mlpbench.report.page import ReportData, Section, load_data
from mlpbench.report.sections_hw import (
    machines_compare_section,
    machines_section,
    memory_section,
    throughput_section,
)
from mlpbench.report.sections_opt import convergence_section, newton_section, skipped_section
from mlpbench.results import atomic_write

SECTIONS = (machines_section, throughput_section, memory_section, convergence_section,
            newton_section, machines_compare_section, skipped_section)


def build_report(asv_results: str | os.PathLike | None, run_dirs: Sequence[str],
                 out: str | os.PathLike = "report.html", *, title: str = "mlpbench report") -> Path:
    """Write the report page; return its path."""
    started = time.perf_counter()
    data = load_data(asv_results, run_dirs)
    sections = [make(data) for make in SECTIONS]
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
    return path


__all__ = ["ReportData", "Section", "build_report", "load_data"]
