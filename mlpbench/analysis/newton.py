"""The Newton cost study's analysis: fitted exponents, HVP/gradient ratios, the Newton wall
and the extrapolation to the 10^7-parameter network (pure functions over stored tables)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from mlpbench.fits import fit_power_law, predict
from mlpbench.optimizers.newton import newton_bytes
from mlpbench.spec import TARGET_SPEC
from mlpbench.units import format_bytes, format_count, human_seconds


def newton_wall(usable_bytes: int, element_bytes: int = 4) -> int:
    """The largest P whose Newton step fits in ``usable_bytes`` by :func:`newton_bytes`."""
    p = int(math.isqrt(usable_bytes // (2 * element_bytes)))
    while newton_bytes(p + 1, element_bytes) <= usable_bytes:
        p += 1
    while p > 0 and newton_bytes(p, element_bytes) > usable_bytes:
        p -= 1
    return p


def analyse(frame: pd.DataFrame) -> dict[str, Any]:
    """Fits, HVP/gradient ratios, the Newton wall and the extrapolation to 10^7, from a stored
    cost table alone: the wall uses the memory of the machine that *measured* (the table's
    ``usable_bytes`` column), never the machine that reads it."""
    ok = frame[frame["status"] == "ok"]
    fits = []
    for op, g in ok.groupby("op"):
        fit = fit_power_law(list(zip(g["params"], g["median_s"], strict=True)))
        if fit:
            fits.append({"op": op, "exponent": fit[0], "log_intercept": fit[1], "r2": fit[2],
                         "points": fit[3], "p_min": int(sorted(g["params"])[-fit[3]]),
                         "p_max": int(g["params"].max())})
    fit_frame = pd.DataFrame(fits)
    times = ok.pivot_table(index="params", columns="op", values="median_s")
    ratios = pd.DataFrame(index=times.index)
    for mode in ("hvp_fwdrev", "hvp_revrev"):
        if mode in times and "grad" in times:
            ratios[f"{mode}/grad"] = times[mode] / times["grad"]
    usable = (int(frame["usable_bytes"].dropna().iloc[0])
              if "usable_bytes" in frame and frame["usable_bytes"].notna().any() else None)
    wall_pred = newton_wall(usable) if usable else None
    newton_ok = ok[ok["op"] == "newton_step"]["params"]
    newton_not = frame[(frame["op"] == "newton_step") & (frame["status"] != "ok")]
    p_target = TARGET_SPEC.num_params
    extrap: dict[str, Any] = {"params": p_target, "label": "extrapolation from fitted power laws",
                              "newton_bytes": newton_bytes(p_target)}
    by_op = {r["op"]: (r["exponent"], r["log_intercept"]) for r in fits}
    for op, fit in by_op.items():
        extrap[f"{op}_s"] = predict(fit, p_target)
    if "hessian" in by_op and "solve" in by_op:
        extrap["newton_step_from_parts_s"] = extrap["hessian_s"] + extrap["solve_s"]
    measured_target = ok[ok["params"] == p_target].set_index("op")["median_s"].to_dict()
    return {
        "fits": fit_frame, "ratios": ratios.reset_index(),
        "wall": {"predicted_params": wall_pred, "usable_bytes": usable,
                 "measured_max_params": int(newton_ok.max()) if len(newton_ok) else None,
                 "first_not_run": (newton_not.sort_values("params").iloc[0][
                     ["params", "status", "reason"]].to_dict() if len(newton_not) else None)},
        "extrapolation": extrap, "measured_at_target": measured_target,
    }


def report_text(analysis: dict[str, Any]) -> str:
    """Plain-text summary of :func:`analyse`."""
    lines = ["scaling exponents (time ~ P^k, least squares on the largest measured points):"]
    for _, r in analysis["fits"].iterrows():
        lines.append(f"  {r['op']:<15} k = {r['exponent']:.2f}  (r² {r['r2']:.3f}, "
                     f"{int(r['points'])} points, P {r['p_min']:,}..{r['p_max']:,})")
    ratios = analysis["ratios"]
    if len(ratios):
        lines.append("HVP / gradient time (measured):")
        for _, r in ratios.iterrows():
            parts = [f"{c} {r[c]:.2f}" for c in ratios.columns if c != "params"
                     and not pd.isna(r[c])]
            lines.append(f"  P={int(r['params']):>10,}: " + ", ".join(parts))
    w = analysis["wall"]
    lines.append(f"Newton wall: predicted P <= {format_count(w['predicted_params'])} (Hessian "
                 f"+ factor in {format_bytes(w['usable_bytes'])} of the measuring machine); "
                 f"largest measured Newton step: P = {w['measured_max_params'] or 0:,}")
    if w["first_not_run"]:
        f = w["first_not_run"]
        lines.append(f"  first Newton step not run: P = {int(f['params']):,} ({f['status']}: "
                     f"{f['reason']})")
    e = analysis["extrapolation"]
    lines.append(f"P = {e['params']:,} ({e['label']}):")
    lines.append(f"  Newton step memory {format_bytes(e['newton_bytes'])}")
    for key in ("hessian_s", "solve_s", "newton_step_from_parts_s", "grad_s", "sgd_step_s"):
        if key in e:
            lines.append(f"  {key[:-2]:<24} {human_seconds(e[key])}")
    for op, t in analysis["measured_at_target"].items():
        lines.append(f"  measured {op:<15} {human_seconds(t)}")
    return "\n".join(lines)


def per_cost_table(runs: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per (P, optimizer) medians over seeds of the per-cost race, and the verdict
    ``{"newton_loses_from_params": P or None}``: the smallest P at which exact Newton's median
    time to target exceeds the best first-order method's (or Newton misses the target)."""
    runs = runs.copy()
    hit = runs["status"] == "target"
    runs["grad_equiv_to_target"] = runs["grad_equiv"].where(hit)
    counts = [c for c in ("closure_calls", "forward_calls", "hvps", "hessians") if c in runs]
    for c in counts:
        runs[c] = runs[c].where(hit)
    ratios = [c for c in ("forward_ratio", "hvp_ratio", "hessian_ratio") if c in runs]
    per = runs.groupby(["params", "optimizer"]).agg(
        width=("width", "first"), **{c: (c, "first") for c in ratios},
        success=("status", lambda s: (s == "target").mean()),
        steps=("steps_to_target", "median"), time_s=("time_to_target", "median"),
        time_iqr_s=("time_to_target", lambda t: t.quantile(0.75) - t.quantile(0.25)),
        grad_equiv=("grad_equiv_to_target", "median"),
        **{c: (c, "median") for c in counts},
        final_loss=("final_loss", "median")).reset_index()
    loses = None
    for p, g in per.groupby("params"):
        newton = g[g["optimizer"] == "newton"]
        first = g[~g["optimizer"].str.startswith("newton")]
        best_first = first["time_s"].min()
        if newton.empty:
            continue
        t_newton = newton["time_s"].iloc[0]
        if math.isnan(t_newton) or (not math.isnan(best_first) and t_newton > best_first):
            loses = int(p)
            break
    return per, {"newton_loses_from_params": loses}
