"""Loss curves over seeds on a common grid (pure functions over stored trajectories).

Each seed is interpolated onto one grid of x values before aggregating (as DeepOBS does), so a
median at x is a median over *every* seed at that x: never over the x-values unique to one
seed (the sawtooth of a median over raw wall times) and never over the slower seeds only (the
jagged tail left when fast seeds stop at the target). A seed that stopped holds its last loss
(it stopped because it reached the target, diverged or ran out of budget).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: x-axes a trajectory table can be drawn against, and their labels with units
X_LABELS = {"step": "steps", "time_s": "optimizer wall time (s)",
            "grad_evals": "gradient evaluations (full-batch equivalents)"}


def grid_for(values: np.ndarray, *, n: int = 120, log: bool = False) -> np.ndarray:
    """``n`` grid points spanning ``values`` (geometric from the smallest positive value when
    ``log``; linear from 0 otherwise)."""
    values = values[np.isfinite(values)]
    hi = float(values.max()) if values.size else 0.0
    if hi <= 0:
        return np.array([0.0])
    if log:
        pos = values[values > 0]
        return np.geomspace(float(pos.min()), hi, n)
    return np.linspace(0.0, hi, n)


def interpolate_seed(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``y`` (a loss, > 0) at ``grid`` by linear interpolation of log(y) in ``x``; before the
    first x the first loss, after the last x the last loss (the seed stopped there).
    Non-finite losses (divergence) stay non-finite from where they appear."""
    order = np.argsort(x, kind="stable")
    x, y = np.asarray(x, float)[order], np.asarray(y, float)[order]
    finite = np.isfinite(y) & (y > 0)
    if not finite.any():
        return np.full(grid.shape, np.nan)
    out = np.exp(np.interp(grid, x[finite], np.log(y[finite])))
    if not finite.all():  # diverged: NaN from the first bad x on
        out[grid >= x[~finite].min()] = np.nan
    return out


def aggregate_curves(traj: pd.DataFrame, *, x: str = "step", y: str = "train_loss",
                     n: int = 120, log: bool = False,
                     by: tuple[str, ...] = ("workload", "optimizer")) -> pd.DataFrame:
    """Median and quartiles of ``y`` over seeds on a common grid of ``x``, per ``by`` group.

    Returns
    -------
    DataFrame
        Columns ``by`` + ``x``, ``median``, ``q25``, ``q75``, ``seeds`` (seeds with a finite
        value at that x) and ``running`` (seeds whose trajectory has not ended before x).
    """
    by = tuple(b for b in by if b in traj)
    if traj.empty or x not in traj or y not in traj:
        return pd.DataFrame(columns=[*by, x, "median", "q25", "q75", "seeds", "running"])
    parts = []
    for group, g in traj.groupby(list(by), sort=True):
        xv, yv = g[x].to_numpy(float), g[y].to_numpy(float)
        grid = grid_for(xv, n=n, log=log)
        seeds = g["seed"].to_numpy() if "seed" in g else np.zeros(len(g))
        curves, ends = [], []
        for seed in np.unique(seeds):
            m = seeds == seed
            curves.append(interpolate_seed(xv[m], yv[m], grid))
            ends.append(float(np.nanmax(xv[m])))
        stack = np.vstack(curves)
        with np.errstate(all="ignore"):
            q = np.nanquantile(np.where(np.isfinite(stack), stack, np.nan), [0.25, 0.5, 0.75],
                               axis=0) if np.isfinite(stack).any() else np.full((3, grid.size),
                                                                               np.nan)
        group = group if isinstance(group, tuple) else (group,)
        frame = pd.DataFrame({x: grid, "median": q[1], "q25": q[0], "q75": q[2],
                              "seeds": np.isfinite(stack).sum(axis=0),
                              "running": (np.array(ends)[:, None] >= grid[None, :]).sum(axis=0)})
        for k, v in zip(by, group, strict=True):
            frame.insert(0, k, v)
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)[[*by, x, "median", "q25", "q75", "seeds",
                                                  "running"]]


def performance_profile(times: pd.DataFrame, *, value: str = "time_median",
                        problem: str = "workload", solver: str = "optimizer",
                        taus: np.ndarray | None = None) -> pd.DataFrame:
    """Dolan–Moré performance profile: for each solver, the fraction of problems it solves
    within a factor τ of the best solver on that problem (AlgoPerf's summary).

    ``times`` holds one row per (problem, solver) with ``value`` NaN where the solver failed.
    Returns columns ``solver``, ``tau``, ``fraction``.
    """
    wide = times.pivot_table(index=problem, columns=solver, values=value, aggfunc="median",
                             dropna=False)
    best = wide.min(axis=1)
    ratio = wide.div(best, axis=0)
    finite = ratio.to_numpy(float)
    top = np.nanmax(finite) if np.isfinite(finite).any() else 1.0
    taus = taus if taus is not None else np.geomspace(1.0, max(2.0, top * 1.05), 60)
    rows = []
    for s in ratio.columns:
        r = ratio[s].to_numpy(float)
        for t in taus:
            rows.append({solver: s, "tau": float(t),
                         "fraction": float(np.mean(np.nan_to_num(r, nan=np.inf) <= t))})
    return pd.DataFrame(rows)
