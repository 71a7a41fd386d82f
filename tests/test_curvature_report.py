"""The curvature report section, from a stored table: figure, tables, headline."""

import pandas as pd
import pytest

from mlpbench.analysis.curvature import memory_curves, memory_walls
from mlpbench.report.page import ReportData
from mlpbench.report.sections import SECTIONS
from mlpbench.report.sections_curvature import curvature_section
from mlpbench.spec import TARGET_SPEC


def _rows(machine="m1"):
    out = []
    for p, scale in ((1441, 1.0), (18049, 4.0), (TARGET_SPEC.num_params, 400.0)):
        for method, variant, t in (("sgd", "step", 1e-3), ("adam", "step", 2e-3),
                                   ("soap", "update", 3e-2), ("soap", "cheap", 1e-2),
                                   ("muon", "step", 5e-3)):
            out.append({"params": p, "method": method, "variant": variant, "compiled": False,
                        "status": "ok", "median_s": t * scale, "factor_cubes": 10 * p,
                        "state_model_bytes": 8 * p, "state_counted_bytes": 8 * p,
                        "training_model_bytes": 20 * p, "rss_peak_bytes": 12.0 * p,
                        "first_call_s": 0.1, "machine_id": machine})
    return pd.DataFrame(out)


def _data(runs):
    return ReportData(runs=runs, hardware={"m1": {"ram_bytes": 16 * 2 ** 30}},
                      asv=pd.DataFrame(), asv_machines={}, sources=[])


def test_section_is_registered_after_newton():
    names = [f.__name__ for f in SECTIONS]
    assert names.index("curvature_section") == names.index("newton_section") + 1


def test_section_without_data_says_how_to_get_it():
    s = curvature_section(_data({}))
    assert s.empty and "curvature-cost" in s.empty


def test_section_from_a_table():
    s = curvature_section(_data({"curvature_cost": _rows()}))
    assert s.empty is None
    assert len(s.pending) == 1  # the curvature-wall figure
    captions = " ".join(c for c, _ in s.tables)
    for word in ("multiples of an SGD", "FLOP model", "State memory", "Memory walls",
                 "EXTRAPOLATION"):
        assert word in captions
    # SOAP at 10^7: (3e-2 + 1e-2)/2 · 400 = 8 s against Adam's 0.8 s
    assert any("soap step = 10.0× Adam" in n for n in s.notes), s.notes
    s.pending[0][1]()  # the figure draws


def test_memory_walls_of_the_closed_forms():
    """Newton hits the wall first; Adam fits wherever SGD's 2·P more does."""
    curves = memory_curves()
    walls = memory_walls(curves, 16 * 2 ** 30).set_index("method")
    assert walls.loc["newton", "largest_fitting_params"] < walls.loc["adam",
                                                                     "largest_fitting_params"]
    newton = curves[curves["method"] == "newton"].set_index("params")["bytes"]
    assert newton[TARGET_SPEC.num_params] > 300 * 2 ** 40  # dense Hessian + factor: ~640 TiB
    assert walls.loc["adam", "largest_fitting_params"] >= TARGET_SPEC.num_params


@pytest.mark.parametrize("status", ["failed", "skipped"])
def test_section_with_no_measured_step(status):
    rows = _rows().assign(status=status, median_s=None)
    s = curvature_section(_data({"curvature_cost": rows}))
    assert not any("× Adam" in n for n in s.notes)
