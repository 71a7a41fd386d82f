"""The tables behind the report's five-line summary card, and the card's statements drawn from
them (pure functions over stored tables).

Each statement is generated from the same table its section shows, so a statement and its
evidence cannot disagree: :func:`best_points` (Throughput's best-point table),
:func:`mode_comparison` (Execution modes' tables), :func:`tuned_best` (Convergence's best-η
table), :func:`mlpbench.analysis.compare.ranking` (Machine vs machine's ranking) and
:func:`not_measured` (what did not run). A statement is a dict ``{"key", "topic", "text",
"section", "table", "values"}``: ``section`` and ``table`` name the anchors that hold its
evidence, ``values`` the numbers it states (the report's tests compare them with the table).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mlpbench.analysis.convergence import aggregate, lr_summary
from mlpbench.analysis.modes import SETTING, over_runs
from mlpbench.measure.contention import flags
from mlpbench.point import POINT_KEYS, with_defaults
from mlpbench.results.loading import CHECKED_METADATA

Statement = dict[str, Any]

#: a compile series: one network shape, batch and thread count of one machine and phase
COMPILE_SERIES = ("machine_id", "device", "phase", "input_dim", "depth", "batch", "threads")


def point_medians(ok: pd.DataFrame) -> pd.DataFrame:
    """One row per machine and sweep point: repeated points (two runs of one machine, resumed
    or merged runs) collapse to their median — over their clean rows when they have any; a
    point measured only on a busy machine keeps its ``contention`` reasons."""
    keys = ["machine_id", *CHECKED_METADATA, *POINT_KEYS, "phase", "params"]
    ok = with_defaults(ok)
    keys = [k for k in keys if k in ok]
    num = [c for c in ("median_s", "iqr_s", "gflops", "samples_per_s", "peak_fraction",
                       "peak_fraction_lo", "peak_fraction_hi", "peak_gflops") if c in ok]
    flag = flags(ok)
    ok = ok.assign(contention=flag, _clean=flag == "")
    any_clean = ok.groupby(keys, dropna=False)["_clean"].transform("max")
    ok = ok[ok["_clean"] | ~any_clean]
    med = ok.groupby(keys, as_index=False, dropna=False)[num].median()
    why = ok.groupby(keys, dropna=False)["contention"].agg(
        lambda v: "; ".join(dict.fromkeys(x for x in v if x))).reset_index(drop=True)
    return med.assign(contention=why.to_numpy())


def best_points(sweep: pd.DataFrame) -> pd.DataFrame:
    """The best point (highest fraction of peak) per machine, device, framework and phase,
    over the medians of :func:`point_medians`, among points measured on a quiet machine
    only (a flagged point is never "best")."""
    ok = sweep[(sweep["status"] == "ok") & sweep["median_s"].notna()]
    if ok.empty or "peak_fraction" not in ok:
        return pd.DataFrame()
    med = point_medians(ok)
    med = med[med["contention"] == ""]
    best = (med.sort_values("peak_fraction", ascending=False)
            .groupby(["machine_id", "device", "framework", "phase"]).head(1))
    return best.sort_values(["machine_id", "device", "framework", "phase"], ignore_index=True)


def mode_comparison(runs: dict[str, pd.DataFrame], kind: str, *studies: str) -> pd.DataFrame:
    """The study tables of ``kind`` plus the same comparison over the sweep rows, one row per
    setting (a study's rows win over the same setting derived again from its sweeps)."""
    parts = [runs[s] for s in studies if s in runs]
    sweep = runs.get("sweep")
    if sweep is not None and "median_s" in sweep:
        parts.append(over_runs(sweep, kind))
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame()
    table = pd.concat(parts, ignore_index=True)
    keys = [k for k in SETTING if k in table]
    table = table.drop_duplicates(subset=keys).drop(columns=["run_dir"], errors="ignore")
    return table.sort_values([k for k in ("machine_id", "phase", "params") if k in table],
                             ignore_index=True)


def compile_series(compiled: pd.DataFrame) -> pd.DataFrame:
    """Per compile series (:data:`COMPILE_SERIES`): the speedup range over P and whether it
    was faster than eager in every run at some size (``speedup_min`` > 1)."""
    if compiled.empty or "speedup" not in compiled:
        return pd.DataFrame()
    floor = compiled["speedup_min"] if "speedup_min" in compiled else compiled["speedup"]
    keys = [k for k in COMPILE_SERIES if k in compiled]
    t = compiled.assign(floor=floor.fillna(0))
    return t.groupby(keys, dropna=False).agg(
        speedup_low=("speedup", "min"), speedup_high=("speedup", "max"),
        best_floor=("floor", "max"), sizes=("params", "nunique"),
        runs=("reps", "max") if "reps" in t else ("speedup", "size")).reset_index()


def tuned_best(runs: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    """The best learning rate per workload and optimizer family (Convergence's table)."""
    lr = runs.get("lr_sensitivity")
    if lr is None:
        return runs.get("lr_best")
    return lr_summary(lr)[1] if "seed" in lr else runs.get("lr_best")


def default_winners(converge: pd.DataFrame) -> pd.DataFrame:
    """Fastest optimizer to target per workload by median wall time, among those whose seeds
    mostly (≥ 50%) reached it, at the hyperparameters each ran with."""
    agg = aggregate(converge)
    good = agg[agg["success_rate"] >= 0.5]
    return good.loc[good.groupby("workload")["time_median"].idxmin()].reset_index(drop=True)


def tuned_winners(best: pd.DataFrame) -> pd.DataFrame:
    """Fastest optimizer per workload at its best η, among η where most seeds reached the
    target."""
    good = best[(best["success"] >= 0.5) & best["time_to_target"].notna()]
    if "workload" not in good:
        good = good.assign(workload="all")
    return good.loc[good.groupby("workload")["time_to_target"].idxmin()].reset_index(drop=True)


def not_measured(runs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """What did not run, per source and status: counts of rows whose status is not ok, and a
    row ``device cuda`` when no CUDA point ran anywhere."""
    rows = []
    for kind in ("sweep", "newton_cost"):
        f = runs.get(kind)
        if f is not None and "status" in f:
            for status, n in f.loc[f["status"] != "ok", "status"].value_counts().items():
                rows.append({"source": kind, "status": str(status), "count": int(n)})
    sweep = runs.get("sweep")
    if sweep is not None and "device" in sweep:
        cuda = sweep["device"].astype(str).str.startswith("cuda") & (sweep["status"] == "ok")
        if not cuda.any():
            rows.append({"source": "sweep", "status": "no CUDA point ran", "count": 0})
    return pd.DataFrame(rows, columns=["source", "status", "count"])


def _st(key: str, topic: str, text: str, section: str, table: str,
        **values: Any) -> Statement:
    return {"key": key, "topic": topic, "text": text, "section": section, "table": table,
            "values": values}


def _config(r: pd.Series) -> str:
    axes = [str(r[k]) for k in ("framework", "mode", "dtype") if k in r and pd.notna(r[k])]
    if "threads" in r and pd.notna(r["threads"]) and int(r["threads"]) > 0:
        axes.append(f"{int(r['threads'])} thr")
    return (f"d={int(r['input_dim'])}, w={int(r['width'])}, L={int(r['depth'])}, "
            f"B={int(r['batch'])} (P={int(r['params']):,}), {', '.join(axes)}")


def peak_statement(runs: dict[str, pd.DataFrame], names: dict[str, str]) -> Statement:
    """The point closest to its machine's measured peak, from :func:`best_points`."""
    sweep = runs.get("sweep")
    best = best_points(sweep) if sweep is not None and "median_s" in sweep else pd.DataFrame()
    if best.empty or best["peak_fraction"].isna().all():
        return _st("peak", "Fastest against peak", "no sweep with a measured peak in these "
                   "results (`mlpbench sweep`)", "throughput", "best-points")
    r = best.loc[best["peak_fraction"].idxmax()]
    mid = str(r["machine_id"])
    med = point_medians(sweep[(sweep["status"] == "ok") & sweep["median_s"].notna()])
    busy = int((med["contention"] != "").sum())
    paired = "peak_fraction_lo" in r and r["peak_fraction_lo"] == r["peak_fraction_lo"]
    return _st("peak", "Fastest against peak",
               f"{r['phase']} on {names.get(mid, mid)} ({r['device']}): "
               f"{r['gflops']:,.0f} GFLOP/s, {r['peak_fraction']:.0%} of "
               + (f"the matmul yardstick timed beside it (95% CI {r['peak_fraction_lo']:.0%}–"
                  f"{r['peak_fraction_hi']:.0%}; {r['peak_gflops']:,.0f} GFLOP/s)" if paired
                  else f"that machine's measured matmul peak ({r['peak_gflops']:,.0f} GFLOP/s)")
               + f", at {_config(r)}"
               + (f"; {busy} of {len(med)} points measured on a busy machine, left out"
                  if busy else ""),
               "throughput", "best-points", machine_id=mid, phase=str(r["phase"]),
               peak_fraction=float(r["peak_fraction"]), gflops=float(r["gflops"]),
               params=int(r["params"]))


def optimizer_statement(runs: dict[str, pd.DataFrame]) -> Statement:
    """Per workload: the fastest optimizer at its defaults and the fastest at its best η."""
    conv = runs.get("converge")
    best = tuned_best(runs)
    if conv is None or conv.empty:
        return _st("optimizer", "Fastest optimizer", "no convergence runs in these results "
                   "(`mlpbench converge`)", "convergence", "to-target")
    default = default_winners(conv)
    tuned = tuned_winners(best) if best is not None and len(best) else pd.DataFrame()
    parts, values = [], {}
    for w in sorted(set(conv["workload"])):
        d = default[default["workload"] == w]
        t = tuned[tuned["workload"] == w] if len(tuned) else tuned
        text = (f"{w}: at defaults {d['optimizer'].iloc[0]} "
                f"({d['time_median'].iloc[0]:.3g} s)" if len(d)
                else f"{w}: at defaults none reached the target in most seeds")
        if len(t):
            text += (f"; tuned, {t['base'].iloc[0]} at η = {t['lr'].iloc[0]:.3g} "
                     f"({t['time_to_target'].iloc[0]:.3g} s)")
        parts.append(text)
        values[w] = {"default": d["optimizer"].iloc[0] if len(d) else None,
                     "default_s": float(d["time_median"].iloc[0]) if len(d) else None,
                     "tuned": t["base"].iloc[0] if len(t) else None,
                     "tuned_s": float(t["time_to_target"].iloc[0]) if len(t) else None}
    return _st("optimizer", "Fastest optimizer to target", "; ".join(parts)
               + " (median wall time; tuned: best η of the learning-rate grid)",
               "convergence", "to-target", **values)


def machine_statement(pairs: pd.DataFrame, names: dict[str, str]) -> Statement:
    """The fastest and the slowest machine and the ratio between them."""
    if pairs.empty or pairs["machine"].nunique() < 2:
        return _st("machines", "Machine vs machine", "one machine measured (no comparison)",
                   "compare", "machine-ranking")
    score = pairs[pairs["machine"] != pairs["reference"]].groupby("machine")[
        "geomean_speedup"].apply(lambda s: float(s.prod() ** (1 / len(s))))
    fast, slow = str(score.idxmax()), str(score.idxmin())
    p = pairs[(pairs["machine"] == fast) & (pairs["reference"] == slow)]
    if p.empty:
        return _st("machines", "Machine vs machine", f"fastest {names.get(fast, fast)}, "
                   f"slowest {names.get(slow, slow)}: no benchmark in common",
                   "compare", "machine-ranking", fastest=fast, slowest=slow)
    r = p.iloc[0]
    # the slowest's speed relative to the fastest: the inverse ratio and interval
    ci = (f", 95% interval {1 / r['ci_high']:.2f}–{1 / r['ci_low']:.2f}×"
          if pd.notna(r["ci_low"]) else "")
    many = f" of {pairs['machine'].nunique()} machines" if pairs["machine"].nunique() > 2 else ""
    return _st("machines", "Machine vs machine",
               f"fastest{many}: {names.get(fast, fast)}; slowest: {names.get(slow, slow)}, "
               f"which runs at {1 / r['geomean_speedup']:.2f}× the fastest's speed "
               f"(geometric mean over {int(r['benchmarks']):,} shared benchmarks{ci})",
               "compare", "machine-ranking", fastest=fast, slowest=slow,
               ratio=float(r["geomean_speedup"]), benchmarks=int(r["benchmarks"]))


def missing_statement(runs: dict[str, pd.DataFrame], empty_folders: list[str]) -> Statement:
    """What could not be measured: no CUDA, points that did not run, folders that gave
    nothing."""
    t = not_measured(runs)
    parts = [f"{r.source}: {r.count:,} {r.status}" if r.count else r.status
             for r in t.itertuples()]
    if empty_folders:
        parts.append(f"{len(empty_folders)} given folder(s) with rows not read or no rows "
                     "(named under Machines measured)")
    return _st("missing", "Not measured", "; ".join(parts) or "every point ran",
               "skipped", "skipped", counts={f"{r.source} {r.status}": int(r.count)
                                             for r in t.itertuples()},
               empty_folders=list(empty_folders))


def newton_statement(facts: list[dict[str, Any]], names: dict[str, str]) -> Statement:
    """The Newton wall and the 10^7 extrapolation per measuring machine, from the headline's
    Newton facts (:func:`mlpbench.analysis.headline.newton_facts`)."""
    if not facts:
        return _st("newton", "Newton wall", "no Newton-cost study in these results "
                   "(`mlpbench newton-cost`)", "newton", "newton")
    by: dict[str, list[str]] = {}
    for f in facts:
        by.setdefault(str(f["machine"]), []).append(f["fact"])
    many = len(by) > 1
    text = " · ".join((f"{names.get(m, m)}: " if many else "") + "; ".join(fs)
                      for m, fs in by.items())
    return _st("newton", "Newton wall", text, "newton", "newton",
               facts=[f["fact"] for f in facts])
