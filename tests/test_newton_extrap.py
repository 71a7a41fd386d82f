"""The 10^7 Newton extrapolation: physical rows recomputed from the committed inputs with
independent numpy code, the fitter's refusal of laws below a lower bound, and the FLOP model of
a Hessian column against torch's FlopCounterMode."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.func import vmap
from torch.utils.flop_counter import FlopCounterMode

from mlpbench.analysis.newton import analyse
from mlpbench.analysis.newton_extrap import (
    Peak,
    extrapolation_table,
    factorizations,
    hessian_column_flops,
    peak_from_machine,
    step_range,
)
from mlpbench.measure.second_order import flat_loss, hvp_fwdrev
from mlpbench.models import build_torch
from mlpbench.problems.workloads import mse
from mlpbench.spec import MLPSpec

MACHINE = Path(__file__).resolve().parents[1] / "results" / "runs" / "intel-xeon-2c"
NEWTON = MACHINE / "newton"


def _committed():
    cost = pd.read_csv(NEWTON / "newton_cost.csv")
    table = pd.read_csv(NEWTON / "newton_extrapolation.csv")
    machine = json.loads((MACHINE / "modes" / "machine.json").read_text())
    return cost, table, machine


def _row(table, quantity, bound):
    r = table[(table["quantity"] == quantity) & (table["bound"] == bound)]
    assert len(r) == 1, (quantity, bound)
    return r.iloc[0]


@pytest.mark.parametrize("shape", [(10, 8, 2, 16), (5, 7, 3, 8), (3, 4, 1, 5)])
def test_hessian_column_flops_match_flop_counter(shape):
    d, w, depth, batch = shape
    spec = MLPSpec(d, w, depth)
    f, theta = flat_loss(build_torch(spec, seed=0), mse, torch.randn(batch, d),
                         torch.randn(batch, 1))
    counts = []
    for k in (1, 2, 3):
        vs = torch.randn(k, theta.numel())
        with FlopCounterMode(display=False) as fc:
            vmap(lambda v: hvp_fwdrev(f, theta, v))(vs)
        counts.append(fc.get_total_flops())
    per_column = np.diff(counts)
    assert per_column[0] == per_column[1] == hessian_column_flops(spec, batch) > 0


def test_factorizations_from_damping():
    assert factorizations(1e-3) == 1
    assert factorizations(10.0) == 5
    assert factorizations(1e-2) == 2


def test_committed_physical_rows_recomputed_with_numpy():
    cost, table, machine = _committed()
    ok = cost[cost["status"] == "ok"].set_index(["op", "params"])
    p = 9_111_001
    peak = next(m["gflops"] for m in machine["measurements"]
                if m["mode"] == "fp32" and m["threads"] == int(cost["threads"].iloc[0])) * 1e9
    dims = np.array([100] + [1000] * 10 + [1], dtype=np.float64)
    ab = dims[:-1] * dims[1:]
    batch = float(cost["batch"].iloc[0])
    grad_flops = batch * (2 * ab.sum() + 4 * ab.sum() - 2 * ab[0])
    column = 2 * grad_flops - 4 * ab[0] * batch
    t_hvp = ok.loc[("hvp_fwdrev", p), "median_s"]
    adv = ok.loc[("hessian", 18049), "median_s"] / (18049 * ok.loc[("hvp_fwdrev", 18049),
                                                                   "median_s"])
    solve = ok.loc[("solve", 4929)]
    n_fact = np.log10(solve["damping"] / 1e-3) + 1
    rate = n_fact * 4929.0**3 / 3 / solve["median_s"]
    expect = {
        ("hessian", "lower bound"): p * column / peak,
        ("hessian", "upper estimate"): p * t_hvp,
        ("hessian", "central estimate"): adv * p * t_hvp,
        ("factorization", "lower bound"): float(p) ** 3 / 3 / peak,
        ("solve", "lower bound"): float(p) ** 3 / 3 / peak,
        ("factorization", "upper estimate"): float(p) ** 3 / 3 / rate,
        ("solve", "upper estimate"): n_fact * float(p) ** 3 / 3 / rate,
    }
    expect[("newton_step", "lower bound")] = (expect[("hessian", "lower bound")]
                                             + expect[("solve", "lower bound")])
    expect[("newton_step", "upper estimate")] = (expect[("hessian", "upper estimate")]
                                                + expect[("solve", "upper estimate")]
                                                + ok.loc[("grad", p), "median_s"])
    for op in ("grad", "hvp_fwdrev", "hvp_revrev", "newton_cg_step", "sgd_step", "adam_step"):
        expect[(op, "measured")] = ok.loc[(op, p), "median_s"]
    for key, value in expect.items():
        np.testing.assert_allclose(_row(table, *key)["seconds"], value, rtol=1e-9,
                                   err_msg=str(key))
    # the cross-check: one factorization at 122.1 GFLOP/s is about 65 years
    assert 64 < expect[("factorization", "lower bound")] / (365.25 * 86400) < 66


def test_committed_table_is_physically_consistent():
    _, table, _ = _committed()
    assert {"model", "inputs", "bound", "status"} <= set(table.columns)
    assert table["model"].str.len().min() > 0 and table["inputs"].str.len().min() > 0
    low, high = step_range(table)
    parts = (_row(table, "hessian", "lower bound")["seconds"]
             + _row(table, "solve", "lower bound")["seconds"])
    assert low["seconds"] >= parts * (1 - 1e-12)
    assert high["seconds"] >= low["seconds"]
    for q, g in table[table["status"] == "ok"].groupby("quantity"):
        lows = g[g["bound"] == "lower bound"]["seconds"]
        if len(lows):  # nothing accepted lies below its quantity's lower bound
            assert (g["seconds"] >= lows.max() * (1 - 1e-12)).all(), q
    fitted_step = _row(table, "newton_step", "fitted")
    assert fitted_step["status"].startswith("rejected")
    assert (table["bound"] == "measured").sum() == 6  # every op timed at P = 9,111,001


def test_committed_table_is_what_the_analysis_derives():
    cost, table, machine = _committed()
    peak = peak_from_machine(machine, int(cost["threads"].iloc[0]),
                             "intel-xeon-2c/modes/machine.json")
    derived = extrapolation_table(cost, peak=peak)
    pd.testing.assert_frame_equal(derived.reset_index(drop=True),
                                  table[derived.columns].reset_index(drop=True))


def _synthetic(solve_exponent: float = 3.0) -> pd.DataFrame:
    """A cost table with laws chosen: HVP ∝ P, Hessian ∝ P², solve ∝ P^solve_exponent."""
    rows = []
    for p in (100, 200, 400, 800):
        for op, t in (("grad", 1e-6 * p), ("hvp_fwdrev", 2e-6 * p), ("hessian", 1e-6 * p * p),
                      ("solve", 1e-9 * p**solve_exponent), ("newton_step", 1e-8 * p**1.2)):
            rows.append({"params": p, "op": op, "status": "ok", "median_s": t, "batch": 4,
                         "damping": 1e-2 if op == "solve" else np.nan})
    for op, t in (("grad", 3.0), ("hvp_fwdrev", 6.0)):
        rows.append({"params": 9_111_001, "op": op, "status": "ok", "median_s": t,
                     "batch": 4, "damping": np.nan})
    return pd.DataFrame(rows)


def test_fitter_rejects_a_law_below_a_lower_bound():
    table = extrapolation_table(_synthetic(), peak=Peak(100.0, "test"))
    step = _row(table, "newton_step", "fitted")
    assert step["status"].startswith("rejected: below the lower bound")
    assert _row(table, "solve", "fitted")["status"] == "ok"  # P³ at 1e-9 s: slower than peak
    assert _row(table, "factorization", "upper estimate")["seconds"] > 0
    low, _ = step_range(table)
    assert low["seconds"] > step["seconds"]


def test_fitter_flags_unchecked_laws_without_a_peak():
    table = extrapolation_table(_synthetic())
    assert not (table["bound"] == "lower bound").any()
    assert step_range(table) is None
    assert table[table["bound"] == "fitted"]["status"].str.startswith("not checked").all()


def test_measured_at_target_is_not_extrapolated():
    info = analyse(_synthetic().assign(device="cpu", usable_bytes=2**30))
    assert "grad_s" not in info["extrapolation"]
    assert info["measured_at_target"]["grad"] == 3.0
    table = info["extrapolation_table"]
    assert _row(table, "grad", "measured")["seconds"] == 3.0
    assert "grad" not in set(table[table["bound"] == "fitted"]["quantity"])
