"""Report sections: Newton vs first order, and the points that did not run."""

from __future__ import annotations

import pandas as pd

from mlpbench.analysis.newton import analyse
from mlpbench.report import fig_opt
from mlpbench.report.page import ReportData, Section
from mlpbench.spec import TARGET_SPEC
from mlpbench.units import format_bytes, format_count, human_seconds


def newton_section(d: ReportData) -> Section:
    s = Section("newton", "Newton vs first order")
    cost = d.runs.get("newton_cost")
    if cost is None:
        s.empty = "No Newton cost data. Run `mlpbench newton-cost --per-cost`."
        return s
    for mid_raw, g in cost.groupby("machine_id"):
        mid = d.machine_name(mid_raw)
        ok = g[(g["status"] == "ok") & g["median_s"].notna()]
        ok = ok.groupby(["op", "params"], as_index=False)["median_s"].median()
        info = analyse(g)
        w, e = info["wall"], info["extrapolation"]
        s.figure(f"Seconds per call against P on {mid}: measured (filled), fitted power laws "
                 f"(dashed) drawn to P = {TARGET_SPEC.num_params:,}, extrapolated points "
                 "(hollow), the Newton wall (vertical)",
                 lambda ok=ok, info=info: fig_opt.cost_scaling(ok, info["fits"],
                                                               info["extrapolation"],
                                                               info["wall"]))
        if w["predicted_params"]:
            s.notes.append(
                f"Newton wall of {mid}: P ≤ {format_count(w['predicted_params'])} (dense "
                f"Hessian and its Cholesky factor in {format_bytes(w['usable_bytes'])}); "
                f"largest P whose Newton step was measured: {w['measured_max_params'] or 0:,}.")
        s.table(f"Fitted exponents on {mid} (time ∝ P^k, largest measured points)",
                info["fits"], name=f"newton-fits-{mid}")
        if len(info["ratios"]):
            s.table(f"HVP / gradient time on {mid}, measured (×)", info["ratios"],
                    name=f"hvp-ratios-{mid}")
        ext = _extrapolation(d, mid_raw, info)
        s.table(f"P = {TARGET_SPEC.num_params:,} (d=100, n_h=1000, L=10) on {mid}: the "
                "Newton step's memory (model) and what was measured at that P",
                _target_rows(e["newton_bytes"], info["measured_at_target"]),
                name=f"target-{mid}")
        if ext is not None and len(ext):
            ext = ext.assign(readable=[human_seconds(v) for v in ext["seconds"]])
            s.table(f"EXTRAPOLATED to P = {TARGET_SPEC.num_params:,} on {mid}: each row's "
                    "bound (lower bound, upper or central estimate, fitted law), model and "
                    "inputs; a fitted law below a lower bound is marked rejected; the summary's "
                    "range is the Newton step's lower bound to its upper estimate",
                    ext[[c for c in ("quantity", "bound", "readable", "seconds", "model",
                                     "inputs", "status") if c in ext]],
                    name=f"extrapolation-{mid}")
    conv = d.runs.get("newton_convergence")
    if conv is not None:
        s.table("Convergence per unit of cost (teacher–student, median over seeds; grad_equiv "
                "= gradient evaluations + measured HVP/grad ratio × HVPs)", conv,
                name="newton-convergence")
    return s


def _extrapolation(d: ReportData, mid: str, info: dict) -> pd.DataFrame | None:
    """The stored extrapolation of machine ``mid`` when it carries bounds, else the one
    re-derived from its cost table."""
    stored = d.runs.get("newton_extrapolation")
    if stored is not None and {"bound", "machine_id"} <= set(stored):
        rows = stored[stored["machine_id"] == mid]
        if len(rows):
            return rows
    return info.get("extrapolation_table")


def _target_rows(newton_bytes: int, measured: dict[str, float]) -> pd.DataFrame:
    rows = [{"quantity": "Newton step memory (Hessian + factor)", "readable":
             format_bytes(newton_bytes), "bytes": newton_bytes, "seconds": None,
             "kind": "memory model"}]
    rows += [{"quantity": op, "readable": human_seconds(t), "bytes": None, "seconds": t,
              "kind": "measured"} for op, t in measured.items()]
    return pd.DataFrame(rows)


def _size_key(text: str) -> float:
    """Sort key of a reason: the first byte size in it, in bytes (else 0)."""
    import re

    m = re.search(r"([\d.,]+)\s*(B|KiB|MiB|GiB|TiB|PiB)\b", str(text))
    if not m:
        return 0.0
    scale = {"B": 0, "KiB": 1, "MiB": 2, "GiB": 3, "TiB": 4, "PiB": 5}[m.group(2)]
    return float(m.group(1).replace(",", "")) * 1024.0 ** scale


def skipped_section(d: ReportData) -> Section:
    s = Section("skipped", "Skipped and failed points")
    parts = []
    for kind in ("sweep", "newton_cost"):
        f = d.runs.get(kind)
        if f is not None and "status" in f:
            bad = f[f["status"] != "ok"].copy()
            if len(bad):
                cols = [c for c in ("device", "framework", "phase", "op") if c in bad]
                what = bad[cols].astype(str).agg(" ".join, axis=1) + " P=" + \
                    bad["params"].map("{:,.0f}".format)
                parts.append(pd.DataFrame({"source": kind, "point": what,
                                           "params": bad["params"], "status": bad["status"],
                                           "reason": bad["reason"].fillna("")}))
    if not d.asv.empty:
        n = (d.asv["status"] != "ok").sum()
        if n:
            s.notes.append(f"{n:,} asv points did not run (asv records no reason: skipped in "
                           "setup — no GPU, heavy without MLPBENCH_FULL=1, or too big — or "
                           "failed); they are listed in the asv section's table.")
    if not parts:
        if not s.notes:
            s.empty = "Every point ran."
        return s
    allbad = pd.concat(parts, ignore_index=True)
    grouped = (allbad.groupby(["source", "status", "reason"]).agg(
        count=("point", "size"), smallest_params=("params", "min"),
        examples=("point", lambda p: "; ".join(p.head(3)))).reset_index())
    grouped = grouped.assign(_k=grouped["reason"].map(_size_key)).sort_values(
        ["source", "status", "_k", "smallest_params"]).drop(columns="_k")
    s.table("Grouped by reason (sorted by the size in the reason, then P)", grouped,
            name="skipped", max_rows=400)
    return s
