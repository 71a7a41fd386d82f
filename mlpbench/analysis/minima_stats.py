"""Fractions with Wilson intervals and paired GD-vs-SGD tests over the minima runs table."""

from __future__ import annotations

import math

import pandas as pd
from scipy.stats import binomtest

from mlpbench.problems.minima_workloads import CLASSES

GROUP = ["problem", "budget", "lr", "batch", "optimizer"]


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (scipy's ``proportion_ci``)."""
    if n == 0:
        return (math.nan, math.nan)
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence,
                                                 method="wilson")
    return float(ci.low), float(ci.high)


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per problem × budget × η × optimizer: the count, fraction and 95% Wilson CI of each
    class, plus the median steps and gradient evaluations used."""
    rows = []
    for key, g in runs.groupby(GROUP, sort=True):
        row = dict(zip(GROUP, key, strict=True))
        row["runs"] = n = len(g)
        for c in CLASSES:
            k = int((g["cls"] == c).sum())
            lo, hi = wilson(k, n)
            row.update({f"n_{c}": k, f"frac_{c}": k / n, f"{c}_lo": lo, f"{c}_hi": hi})
        row["median_steps"] = float(g["steps"].median())
        row["median_grad_evals"] = float(g["grad_evals"].median())
        rows.append(row)
    return pd.DataFrame(rows)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b and c."""
    if b + c == 0:
        return 1.0
    return float(binomtest(int(b), int(b + c), 0.5).pvalue)


def paired_table(runs: pd.DataFrame, outcome: str = "global",
                 column: str = "cls") -> pd.DataFrame:
    """GD vs each SGD batch size on the same seeds (same problem, budget, η).

    ``sgd_only``: seeds SGD took to ``outcome`` (in ``column``: ``cls`` for the run's class,
    ``end_point`` for the basin its polish lands in) and GD did not; ``gd_only`` the
    reverse; the p-value is McNemar's exact test on those discordant pairs.
    """
    rows = []
    hit = runs.assign(hit=runs[column] == outcome)
    for (problem, budget, lr), g in hit.groupby(["problem", "budget", "lr"], sort=True):
        gd = g[g["optimizer"].str.startswith("gd")].set_index("seed")["hit"]
        for opt, s in g[g["optimizer"].str.startswith("sgd")].groupby("optimizer"):
            sgd = s.set_index("seed")["hit"]
            both = gd.index.intersection(sgd.index)
            a, b = gd.loc[both], sgd.loc[both]
            sgd_only, gd_only = int((b & ~a).sum()), int((a & ~b).sum())
            rows.append({"problem": problem, "budget": budget, "lr": lr,
                         "optimizer": opt, "batch": int(s["batch"].iloc[0]),
                         "column": column, "outcome": outcome, "pairs": len(both),
                         "gd_hits": int(a.sum()),
                         "sgd_hits": int(b.sum()), "sgd_only": sgd_only,
                         "gd_only": gd_only, "p_mcnemar": mcnemar_exact(sgd_only, gd_only)})
    return pd.DataFrame(rows)


def paired_all(runs: pd.DataFrame) -> pd.DataFrame:
    """:func:`paired_table` for every outcome that occurs, of the run's class (``cls``) and of
    the polished end point (``end_point``), problem by problem: the complete paired table."""
    parts = [paired_table(runs, outcome, column) for column in ("cls", "end_point")
             for outcome in CLASSES if (runs[column] == outcome).any()]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
