"""The section registry: the report shows these sections in this order. A section is a
function ``ReportData -> Section`` in its own small module; adding one is one line here."""

from __future__ import annotations

from mlpbench.report.sections_compare import asv_section, machines_compare_section
from mlpbench.report.sections_curvature import curvature_section
from mlpbench.report.sections_hw import machines_section, throughput_section
from mlpbench.report.sections_mem import memory_section
from mlpbench.report.sections_modes import modes_section
from mlpbench.report.sections_newton import newton_section, skipped_section
from mlpbench.report.sections_opt import convergence_section
from mlpbench.report.sections_regress import regress_section
from mlpbench.report.sections_scale import distributed_section, minima_section
from mlpbench.report.sections_summary import summary_section

SECTIONS = [
    summary_section,
    machines_section,
    throughput_section,
    modes_section,
    memory_section,
    convergence_section,
    minima_section,
    newton_section,
    curvature_section,
    distributed_section,
    machines_compare_section,
    asv_section,
    regress_section,
    skipped_section,
]
