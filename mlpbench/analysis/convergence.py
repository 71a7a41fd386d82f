"""Aggregates of convergence runs (pure functions over the stored per-run tables)."""

from __future__ import annotations

import pandas as pd


def _q(p: float):
    return lambda s: s.quantile(p)


def aggregate(summary: pd.DataFrame) -> pd.DataFrame:
    """Median and spread over seeds per (workload, optimizer): steps, seconds and gradient
    evaluations to target (over the seeds that reached it), success rate and final loss."""
    out = summary.groupby(["workload", "optimizer"]).agg(
        runs=("seed", "count"),
        reached=("status", lambda s: int((s == "target").sum())),
        diverged=("status", lambda s: int((s == "diverged").sum())),
        steps_median=("steps_to_target", "median"),
        steps_q25=("steps_to_target", _q(0.25)), steps_q75=("steps_to_target", _q(0.75)),
        time_median=("time_to_target", "median"),
        time_q25=("time_to_target", _q(0.25)), time_q75=("time_to_target", _q(0.75)),
        evals_median=("grad_evals_to_target", "median"),
        evals_q25=("grad_evals_to_target", _q(0.25)),
        evals_q75=("grad_evals_to_target", _q(0.75)),
        final_loss_median=("final_loss", "median"),
    ).reset_index()
    out["success_rate"] = out["reached"] / out["runs"]
    return out


def lr_summary(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (workload, base, lr): success rate, median time to target and final loss; and the
    best η per (workload, base): most seeds reaching the target, then fastest; when no η
    reaches it, the lowest median final loss."""
    keys = [k for k in ("workload", "base") if k in runs]
    agg = runs.groupby([*keys, "lr"]).agg(
        success=("status", lambda s: (s == "target").mean()),
        diverged=("status", lambda s: (s == "diverged").mean()),
        time_to_target=("time_to_target", "median"),
        final_loss=("final_loss", "median")).reset_index()
    best = (agg.assign(neg_success=-agg["success"])
            .sort_values([*keys, "neg_success", "time_to_target", "final_loss"])
            .groupby(keys).head(1).drop(columns="neg_success"))
    return agg, best.reset_index(drop=True)
