"""Execution-mode comparisons count the contended rows behind each comparison."""

import math

import pandas as pd

from mlpbench.analysis.modes import over_runs

BASE = dict(machine_id="box", device="cpu", framework="torch", dtype="fp32", input_dim=4,
            width=8, depth=1, batch=4, activation="relu", threads=1, phase="infer",
            status="ok")


def _rows(flagged: set) -> pd.DataFrame:
    rows = []
    for run in ("r1", "r2"):
        for params in (10, 20):
            for mode in ("eager", "compile"):
                rows.append(dict(BASE, params=params, width=params, mode=mode, run_dir=run,
                                 median_s=1.0 if mode == "eager" else 0.5,
                                 compile_s=0.1 if mode == "compile" else math.nan,
                                 contention="main_cpu_share 0.5 < 0.90"
                                 if (run, params, mode) in flagged else ""))
    return pd.DataFrame(rows)


def test_contended_rows_counted_per_comparison_and_machine():
    frame = _rows({("r1", 10, "compile"), ("r2", 10, "eager")})
    table = over_runs(frame, "compile").set_index("params")
    assert table.loc[10, "contended_rows"] == 2 and table.loc[20, "contended_rows"] == 0
    other = _rows(set()).assign(machine_id="other")
    both = over_runs(pd.concat([frame, other]), "compile")
    assert both.groupby("machine_id")["contended_rows"].sum().to_dict() == {"box": 2,
                                                                          "other": 0}


def test_rows_without_evidence_count_as_clean():
    frame = _rows(set()).drop(columns="contention")
    assert (over_runs(frame, "compile")["contended_rows"] == 0).all()
