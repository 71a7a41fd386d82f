"""Derived tables of the curvature cost study over repeated runs (rep*/curvature_cost.csv in
FOLDER): steps.csv (amortised steps, ×SGD, ×Adam, from the median over runs), spread.csv
(median, min and max of each point over runs), flops.csv, memory.csv, extrapolation.csv,
walls.csv (the measuring machine's RAM × the usable fraction).

    .venv/bin/python scripts/curvature_tables.py results/runs/amd-epyc-2c/curvature
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from mlpbench.analysis import curvature as ac
from mlpbench.devices import MEMORY_FRACTION
from mlpbench.results import read_table, write_table


def rss_check(rss: pd.DataFrame) -> pd.DataFrame:
    """Each method's RSS peak less SGD's (the same forward/backward, no state) against its
    state model: ``state_rss_over_model`` ≤ 1 means the model covers what was measured."""
    ok = rss[rss["status"] == "ok"].copy()
    sgd = ok.loc[ok["method"] == "sgd", "rss_peak_bytes"]
    base = float(sgd.iloc[0]) if len(sgd) else float("nan")
    ok["rss_less_sgd_bytes"] = ok["rss_peak_bytes"] - base
    ok["state_rss_over_model"] = ok["rss_less_sgd_bytes"] / ok["state_model_bytes"].where(
        ok["state_model_bytes"] > 0)
    return ok[["method", "optimizer", "params", "state_model_bytes", "state_counted_bytes",
               "rss_peak_bytes", "rss_less_sgd_bytes", "state_rss_over_model", "load1"]]


def main(folder: str) -> int:
    root = Path(folder)
    runs = sorted(root.glob("rep*/curvature_cost.csv"))
    if not runs:
        print(f"curvature_tables: no rep*/curvature_cost.csv in {root}", file=sys.stderr)
        return 2
    rows = pd.concat([read_table(p, "curvature_cost").assign(run=p.parent.name)
                      for p in runs], ignore_index=True)
    costs = ac.step_costs(rows)
    ram = json.loads((runs[0].with_suffix(".json")).read_text())["hardware"]["ram_bytes"]
    tables = {"steps": costs, "spread": ac.spread(rows), "flops": ac.flop_model(costs),
              "memory": ac.memory_check(rows),
              "extrapolation": ac.extrapolation(costs, tuple(dict.fromkeys(rows["method"]))),
              "walls": ac.memory_walls(ac.memory_curves(), ram * MEMORY_FRACTION)}
    rss = root / "rss" / "rss.csv"
    if rss.is_file():
        tables["rss_check"] = rss_check(read_table(rss, "rss"))
    for name, frame in tables.items():
        write_table(root, name, frame)
    print(ac.render_costs(costs))
    line = ac.headline(costs)
    if line:
        print(line)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: curvature_tables.py FOLDER", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
