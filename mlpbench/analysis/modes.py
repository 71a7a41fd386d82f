"""Execution modes, precisions and thread counts compared: pure functions over a sweep table.

Each comparison pairs rows that share every point field but one axis (``mode``, ``dtype``
or ``threads``) and the phase, and divides the baseline's median time by the other's:
a ``speedup`` above 1 means the other setting is faster. Only ``ok`` rows take part.
"""

from __future__ import annotations

import pandas as pd

from mlpbench.point import POINT_KEYS, with_defaults
from mlpbench.results import CHECKED_METADATA

#: columns carried over from the compared row when present
EXTRA = ("params", "first_call_s", "compile_s", "compile_cache_hits", "peak_fraction",
         "gflops", "peak_gflops")


def relative_to(frame: pd.DataFrame, axis: str, base: object, *,
                include_base: bool = False) -> pd.DataFrame:
    """Rows of ``frame`` beside the row that differs only in ``axis`` (set to ``base``).

    Parameters
    ----------
    frame
        A sweep table (any mix of statuses; tables from before an axis existed read with
        its default, e.g. ``mode = eager``).
    axis
        The point field compared: ``mode``, ``dtype`` or ``threads``.
    base
        The baseline value of ``axis``.
    include_base
        Keep the baseline rows themselves (speedup 1).

    Returns
    -------
    pandas.DataFrame
        The point fields, ``phase``, ``params``, ``base_median_s``, ``median_s`` and
        ``speedup = base_median_s / median_s``, sorted by phase, ``axis`` and ``params``.
    """
    keys = [k for k in ("phase", *POINT_KEYS) if k != axis]
    cols = [*keys, axis, "base_median_s", "median_s", "speedup"]
    if frame.empty or "median_s" not in frame:
        return pd.DataFrame(columns=cols)
    ok = with_defaults(frame[frame["status"] == "ok"])
    keys = [k for k in keys if k in ok]
    extra = [c for c in EXTRA if c in ok]
    ok = ok.groupby([*keys, axis], as_index=False)[["median_s", *extra]].median()
    ref = ok[ok[axis] == base][[*keys, "median_s"]].rename(columns={"median_s": "base_median_s"})
    rows = ok if include_base else ok[ok[axis] != base]
    out = rows.merge(ref, on=keys, how="inner")
    out["speedup"] = out["base_median_s"] / out["median_s"]
    sort = [c for c in ("phase", axis, "params") if c in out]
    return out.sort_values(sort, ignore_index=True)


def compile_speedup(frame: pd.DataFrame, base: str = "eager") -> pd.DataFrame:
    """Each compiled mode against eager, per phase and network (with ``compile_s``)."""
    return relative_to(frame, "mode", base)


def precision_speedup(frame: pd.DataFrame, base: str = "fp32") -> pd.DataFrame:
    """Each precision against ``base`` (fp32), per phase and network; ``peak_fraction`` is
    the fraction of that precision's own measured matmul peak."""
    return relative_to(frame, "dtype", base)


def thread_scaling(frame: pd.DataFrame) -> pd.DataFrame:
    """Speedup and parallel efficiency against the fewest threads measured, per phase and
    network: ``efficiency = speedup / (threads / base_threads)`` (1 is perfect scaling)."""
    if frame.empty or "threads" not in frame:
        return relative_to(frame, "threads", 1).assign(base_threads=[], efficiency=[])
    ok = with_defaults(frame[frame["status"] == "ok"])
    if ok.empty:
        return relative_to(ok, "threads", 1).assign(base_threads=[], efficiency=[])
    parts = []
    for n in sorted(ok["threads"].unique()):
        # each network's own fewest-threads row is its baseline
        group = [k for k in ("phase", *POINT_KEYS) if k in ok and k != "threads"]
        fewest = ok.groupby(group)["threads"].transform("min")
        sub = ok[fewest == n]
        if len(sub):
            parts.append(relative_to(sub, "threads", n, include_base=True).assign(base_threads=n))
    out = pd.concat(parts, ignore_index=True)
    out["efficiency"] = out["speedup"] / (out["threads"] / out["base_threads"])
    return out.sort_values(["phase", "params", "threads"], ignore_index=True)


def best_mode(frame: pd.DataFrame) -> pd.DataFrame:
    """Per phase and network, the fastest mode and its speedup over eager (1 when eager)."""
    table = compile_speedup(frame)
    if table.empty:
        return table
    keys = [k for k in ("phase", *POINT_KEYS) if k in table and k != "mode"]
    best = table.loc[table.groupby(keys)["speedup"].idxmax()]
    best = best.assign(mode=best["mode"].where(best["speedup"] > 1, "eager"),
                       speedup=best["speedup"].clip(lower=1.0))
    return best.reset_index(drop=True)


#: per comparison: its function and the value columns summarised over repeated runs
COMPARISONS = {"compile": (compile_speedup, ("speedup", "compile_s", "first_call_s")),
               "precision": (precision_speedup, ("speedup", "peak_fraction", "gflops")),
               "threads": (thread_scaling, ("speedup", "efficiency"))}
#: the columns that name one compared setting across runs
SETTING = ("machine_id", *CHECKED_METADATA, "phase", "params", *POINT_KEYS)


def over_runs(frame: pd.DataFrame, kind: str, by: str = "run_dir") -> pd.DataFrame:
    """A comparison (``compile``, ``precision`` or ``threads``) made within each run, then
    summarised over runs: ``reps``, the median of each value and its ``<value>_min`` /
    ``<value>_max`` over runs, and ``<value>_first`` (the first run's: a compile time with a
    cold cache). Comparing within a run keeps A and B measured side by side (interleaved)."""
    fn, values = COMPARISONS[kind]
    if frame.empty or "status" not in frame:
        return pd.DataFrame()
    groups = frame.groupby(by, sort=True) if by in frame else [(0, frame)]
    parts = []
    for rep, (_, g) in enumerate(groups):
        for mid, m in (g.groupby("machine_id") if "machine_id" in g else [("", g)]):
            table = fn(m)
            if len(table):
                parts.append(table.assign(machine_id=mid, rep=rep))
    if not parts:
        return pd.DataFrame()
    per = pd.concat(parts, ignore_index=True)
    keys = [k for k in SETTING if k in per]
    if kind == "threads":  # a network measured at one thread count compares nothing
        net = [k for k in keys if k != "threads"]
        per = per[per.groupby(net, dropna=False)["threads"].transform("nunique") > 1]
        if per.empty:
            return pd.DataFrame()
    agg = {"reps": ("rep", "nunique"), "base_median_s": ("base_median_s", "median"),
           "median_s": ("median_s", "median")}
    for v in (v for v in values if v in per):
        agg.update({v: (v, "median"), f"{v}_min": (v, "min"), f"{v}_max": (v, "max"),
                    f"{v}_first": (v, "first")})
    per = per.sort_values("rep", kind="stable")
    table = per.groupby(keys, dropna=False).agg(**agg).reset_index()
    return _with_contended(table, frame, [k for k in keys if k != COMPARED[kind]])


#: the axis each comparison compares across (its rows differ in it)
COMPARED = {"compile": "mode", "precision": "dtype", "threads": "threads"}


def _with_contended(table: pd.DataFrame, frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``contended_rows``: how many measured rows behind each comparison (over all runs, both
    sides) carry a contention flag (0 when the rows have no evidence at all)."""
    from mlpbench.measure.contention import flags

    on = [k for k in [*keys, "machine_id"] if k in frame and k in table]
    on = list(dict.fromkeys(on))
    ok = frame[frame["status"] == "ok"]
    if not on or ok.empty:
        return table.assign(contended_rows=0)
    counts = ok.assign(_flag=(flags(ok) != "").astype(int)).groupby(
        on, dropna=False)["_flag"].sum().rename("contended_rows").reset_index()
    out = table.merge(counts, on=on, how="left")
    out["contended_rows"] = out["contended_rows"].fillna(0).astype(int)
    return out
