"""Polish the end points of a minima study that the study's short polish left ``unresolved``
until their class is decided (:func:`mlpbench.studies.minima_classify.resolve_many`: fp64
L-BFGS-B, then Levenberg–Marquardt, then ``eigvalsh`` of the exact Hessian), from the stored
unpolished end points; then re-derive ``minima_summary.csv`` and ``minima_paired.csv``.

    .venv/bin/python scripts/resolve_minima.py [results/runs/intel-xeon-2c/minima]

Each re-polished row keeps its short-polish classes (``end_point_short``, ``cls_short``) and
says how it was polished (``polish``); the table is rewritten after every chunk, and a rerun
continues with the rows not yet re-polished. No training is re-run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mlpbench.analysis.minima_stats import paired_all, summary_table
from mlpbench.problems.minima_workloads import make_minima_workload
from mlpbench.results import write_table
from mlpbench.studies.minima_classify import classify, end_point_class
from mlpbench.studies.minima_engine import layer_shapes
from mlpbench.studies.minima_resolve import resolve_many

LBFGS_ITER, LM_ITER, CHUNK = 5000, 500, 50
SHORT = "levenberg-marquardt 30"
LONG = f"l-bfgs-b {LBFGS_ITER} + levenberg-marquardt {LM_ITER}"


def _theta_index(out: Path, problem: str, rows: pd.DataFrame) -> tuple[np.ndarray, list[int]]:
    thetas, index = [], []
    tags = rows["batch"].astype(int).astype(str).where(~rows["optimizer"].str.startswith("gd"),
                                                       "full")
    for tag, g in rows.groupby(tags):
        z = np.load(out / "end_points" / f"{problem}_batch-{tag}.npz")
        for i, r in g.iterrows():
            hit = np.nonzero((z["seed"] == r["seed"]) & (z["lr"] == r["lr"])
                             & (z["budget"] == r["budget"]))[0]
            if len(hit) != 1:
                raise SystemExit(f"resolve_minima: error: no unique end point for row {i}")
            thetas.append(z["theta"][hit[0]])
            index.append(i)
    return np.stack(thetas).astype(np.float64), index


def _update(runs: pd.DataFrame, index: list[int], polished) -> None:
    for i, p in zip(index, polished, strict=True):
        runs.loc[i, ["polished_loss", "grad_norm", "lambda_min", "lambda_max", "displacement",
                     "dead_units", "min_abs_preact"]] = [
            p.loss, p.grad_norm, p.lambda_min, p.lambda_max, p.displacement, p.dead_units,
            p.min_abs_preact]
        runs.loc[i, "end_point"] = end_point_class(p)
        runs.loc[i, "cls"] = classify(p, runs.loc[i, "run_status"])
        runs.loc[i, ["polish", "polish_iterations"]] = [LONG, p.iterations]


def resolve(out: Path) -> pd.DataFrame:
    runs = pd.read_csv(out / "minima_runs.csv")
    if "polish" not in runs:
        runs = runs.assign(end_point_short=runs["end_point"], cls_short=runs["cls"],
                           polish=SHORT, polish_iterations=np.nan)
    for problem in runs["problem"].unique():
        w = make_minima_workload(problem, seed=0)
        shapes = layer_shapes(w.make_model(0))
        todo = runs[(runs["problem"] == problem) & (runs["end_point_short"] == "unresolved")
                    & (runs["polish"] != LONG)]
        for start in range(0, len(todo), CHUNK):
            chunk = todo.iloc[start:start + CHUNK]
            t0 = time.perf_counter()
            thetas, index = _theta_index(out, problem, chunk)
            _update(runs, index, resolve_many(w, thetas, shapes, lbfgs_iter=LBFGS_ITER,
                                              lm_iter=LM_ITER))
            write_table(out, "minima_runs", runs)
            print(f"{problem}: {start + len(chunk)}/{len(todo)} re-polished "
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)
    write_table(out, "minima_summary", summary_table(runs))
    write_table(out, "minima_paired", paired_all(runs))
    return runs


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    out = Path(argv[0] if argv else "results/runs/intel-xeon-2c/minima")
    if not (out / "minima_runs.csv").is_file():
        print(f"resolve_minima: error: {out}/minima_runs.csv not found", file=sys.stderr)
        return 2
    runs = resolve(out)
    print(runs.groupby(["problem", "end_point"]).size().to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
