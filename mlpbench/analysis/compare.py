"""Machines side by side (pure functions over stored tables): one identity per machine, every
benchmark measured on more than one machine, speedup ratios and their geometric means."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mlpbench.measure.contention import flags
from mlpbench.point import POINT_KEYS, with_defaults

#: asv benchmarks whose value is a time (lower is better) — the ones a speedup makes sense for
_TIME_UNIT = "seconds"


def machine_identities(hardware: dict[str, dict[str, Any]],
                       asv_machines: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per name a machine goes by (run ``machine_id``, asv machine name) with the
    ``identity`` it belongs to: names whose CPU model, logical core count and RAM agree are one
    machine (asv's ``machine.json`` holds no more than that to match on)."""
    rows = []
    for mid, hw in hardware.items():
        rows.append({"name": str(mid), "source": "mlpbench run", "cpu": hw.get("cpu_model"),
                     "cores": _int(hw.get("logical_cores")), "ram_bytes": _int(hw.get("ram_bytes"))})
    for name, m in asv_machines.items():
        rows.append({"name": f"asv:{name}", "source": "asv", "cpu": m.get("cpu"),
                     "cores": _int(m.get("num_cpu")), "ram_bytes": _int(m.get("ram"))})
    frame = pd.DataFrame(rows, columns=["name", "source", "cpu", "cores", "ram_bytes"])
    if frame.empty:
        return frame.assign(identity=pd.Series(dtype=str))
    key = ["|".join(str(v) for v in row) for row in
           frame[["cpu", "cores", "ram_bytes"]].itertuples(index=False)]
    first = {}
    for k, name, src in zip(key, frame["name"], frame["source"], strict=True):
        # prefer the asv name (human-chosen) as the identity's label
        if k not in first or (src == "asv" and not first[k].startswith("asv:")):
            first[k] = name
    frame["identity"] = [first[k].removeprefix("asv:") for k in key]
    return frame


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def sweep_long(sweep: pd.DataFrame) -> pd.DataFrame:
    """Clean sweep rows (no contention flag) as ``benchmark, group, machine, value`` (median
    seconds; repeated points of one machine, e.g. two runs, collapse to their median). The
    benchmark names every point field; ``.attrs["left_out"]`` counts flagged rows dropped."""
    ok = sweep[sweep["status"] == "ok"]
    if ok.empty or "machine_id" not in ok:
        return pd.DataFrame(columns=["benchmark", "group", "machine", "value"])
    ok = with_defaults(ok)
    flagged = flags(ok) != ""
    ok = ok[~flagged]
    keys = [k for k in (*POINT_KEYS, "phase") if k in ok]
    bench = ok[keys].astype(str).apply(lambda r: " ".join(f"{k}={r[k]}" for k in keys), axis=1) \
        if len(ok) else pd.Series(dtype=str)
    frame = pd.DataFrame({"benchmark": bench, "group": ok["device"] + " " + ok["phase"],
                          "machine": ok["machine_id"].astype(str), "value": ok["median_s"]})
    out = frame.groupby(["benchmark", "group", "machine"], as_index=False)["value"].median()
    out.attrs["left_out"] = int(flagged.sum())
    return out


def asv_long(asv: pd.DataFrame) -> pd.DataFrame:
    """asv time benchmarks as ``benchmark, group, machine, value`` (latest commit per machine;
    the group is the benchmark class)."""
    if asv.empty:
        return pd.DataFrame(columns=["benchmark", "group", "machine", "value"])
    ok = asv[(asv["status"] == "ok") & (asv["unit"] == _TIME_UNIT)]
    if ok.empty:
        return pd.DataFrame(columns=["benchmark", "group", "machine", "value"])
    if "date" in ok:
        latest = ok.groupby("machine")["date"].transform("max")
        ok = ok[ok["date"].fillna(0) >= latest.fillna(0)]
    name = ok["benchmark"].str.split(".").str[-2:].str.join(".")
    frame = pd.DataFrame({"benchmark": name + "(" + ok["params"].astype(str) + ")",
                          "group": "asv " + ok["benchmark"].str.split(".").str[-2],
                          "machine": "asv:" + ok["machine"].astype(str), "value": ok["value"]})
    return frame.groupby(["benchmark", "group", "machine"], as_index=False)["value"].median()


def compare_wide(long: pd.DataFrame, reference: str | None = None) -> tuple[pd.DataFrame, str]:
    """Benchmarks measured on ≥ 2 machines, one column per machine (seconds) and a speedup
    column per other machine: ``reference seconds / machine seconds`` (> 1: faster than the
    reference). Returns ``(table, reference machine)``."""
    wide = long.pivot_table(index=["group", "benchmark"], columns="machine", values="value",
                            aggfunc="median")
    wide = wide[wide.notna().sum(axis=1) >= 2]
    if wide.empty:
        return pd.DataFrame(), reference or ""
    machines = list(wide.columns)
    reference = reference if reference in machines else machines[0]
    out = wide.copy()
    for m in machines:
        if m != reference:
            out[f"speedup {m} vs {reference}"] = wide[reference] / wide[m]
    out.columns = [str(c) for c in out.columns]
    out = out.dropna(axis=1, how="all")  # a machine pair with no common benchmark
    return out.reset_index(), reference


def geomean_ratios(wide: pd.DataFrame) -> pd.DataFrame:
    """Geometric mean (and count) of every speedup column per group."""
    cols = [c for c in wide.columns if c.startswith("speedup ")]
    rows = []
    for group, g in wide.groupby("group"):
        for c in cols:
            r = g[c].to_numpy(float)
            r = r[np.isfinite(r) & (r > 0)]
            if r.size:
                rows.append({"group": group, "machine": c.removeprefix("speedup "),
                             "geomean_speedup": float(np.exp(np.log(r).mean())),
                             "benchmarks": int(r.size)})
    return pd.DataFrame(rows, columns=["group", "machine", "geomean_speedup", "benchmarks"])


def comparable(sweep: pd.DataFrame | None, asv: pd.DataFrame,
               identities: pd.DataFrame) -> pd.DataFrame:
    """Every benchmark of every machine as ``benchmark, group, machine, value``: the sweep's
    medians, and asv's time benchmarks when every asv machine's latest results come from one
    commit; each name mapped to its identity (a run id and its asv name are one machine)."""
    parts, left_out = [], 0
    if sweep is not None and "median_s" in sweep:
        parts.append(sweep_long(sweep))
        left_out = parts[-1].attrs.get("left_out", 0)
    if not asv.empty and "commit" in asv:
        latest = asv.sort_values("date").groupby("machine")["commit"].last().dropna()
        if latest.nunique() <= 1:
            parts.append(asv_long(asv))
    long = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["benchmark", "group", "machine", "value"])
    same = dict(zip(identities["name"], identities["identity"], strict=True)) \
        if len(identities) else {}
    out = long.assign(machine=long["machine"].map(
        lambda m: same.get(m, m).removeprefix("asv:")))
    out.attrs["left_out"] = left_out  # flagged sweep rows not compared
    return out


def _geo_interval(logs: np.ndarray) -> tuple[float, float, float]:
    """Geometric mean of ratios and its 95% Student-t interval (on the log ratios)."""
    mean = float(logs.mean())
    if logs.size < 2:
        return float(np.exp(mean)), float("nan"), float("nan")
    half = stats.t.ppf(0.975, logs.size - 1) * stats.sem(logs)
    half = 0.0 if not np.isfinite(half) else float(half)
    return float(np.exp(mean)), float(np.exp(mean - half)), float(np.exp(mean + half))


def pairwise(wide: pd.DataFrame) -> pd.DataFrame:
    """Every ordered pair of machines: the geometric mean over their shared benchmarks of
    ``reference seconds / machine seconds`` (> 1: ``machine`` is faster), its 95% interval and
    the count in common. ``wide`` has one column of seconds per machine (as ``compare_wide``
    before its speedup columns)."""
    machines = [c for c in wide.columns if c not in ("group", "benchmark")
                and not str(c).startswith("speedup ")]
    logs = np.log(wide[machines].to_numpy(float))
    rows = []
    for i, ref in enumerate(machines):
        for j, m in enumerate(machines):
            d = logs[:, i] - logs[:, j]
            d = d[np.isfinite(d)]
            if d.size:
                geo, lo, hi = _geo_interval(d)
                rows.append({"machine": m, "reference": ref, "geomean_speedup": geo,
                             "ci_low": lo, "ci_high": hi, "benchmarks": int(d.size)})
    return pd.DataFrame(rows, columns=["machine", "reference", "geomean_speedup", "ci_low",
                                       "ci_high", "benchmarks"])


def default_reference(wide: pd.DataFrame) -> str:
    """The reference machine: the one measured on the most benchmarks (first on ties)."""
    machines = [c for c in wide.columns if c not in ("group", "benchmark")
                and not str(c).startswith("speedup ")]
    return str(wide[machines].notna().sum().idxmax())


def ranking(pairs: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Machines ranked by geometric-mean speedup over ``reference`` (fastest first)."""
    r = pairs[pairs["reference"] == reference]
    return r.sort_values("geomean_speedup", ascending=False, ignore_index=True)


def heatmap(wide: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Machines × benchmark groups: geometric-mean speedup over ``reference`` per group."""
    machines = [c for c in wide.columns if c not in ("group", "benchmark")
                and not str(c).startswith("speedup ")]
    ratio = np.log(wide[reference].to_numpy(float))[:, None] - np.log(
        wide[machines].to_numpy(float))
    frame = pd.DataFrame(ratio, columns=machines).assign(group=wide["group"].to_numpy())
    return np.exp(frame.groupby("group").mean()).T
