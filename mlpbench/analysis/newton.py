"""The Newton cost study's analysis: fitted exponents, HVP/gradient ratios, the Newton wall
and the extrapolation to the 10^7-parameter network (pure functions over stored tables)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from mlpbench.analysis.newton_extrap import Peak, extrapolation_table
from mlpbench.fits import fit_power_law, predict
from mlpbench.optimizers.newton import NEWTON_P2_FACTOR, block_budget, newton_bytes
from mlpbench.spec import TARGET_SPEC
from mlpbench.units import format_bytes, format_count, human_seconds


def newton_wall(usable_bytes: int, element_bytes: int = 4) -> int:
    """The largest P whose Newton step fits in ``usable_bytes`` by :func:`newton_bytes`."""
    p = int(math.isqrt(int(usable_bytes / (NEWTON_P2_FACTOR * element_bytes))))
    while newton_bytes(p + 1, element_bytes) <= usable_bytes:
        p += 1
    while p > 0 and newton_bytes(p, element_bytes) > usable_bytes:
        p -= 1
    return p


def analyse(frame: pd.DataFrame, peak: Peak | None = None) -> dict[str, Any]:
    """Fits, HVP/gradient ratios, the Newton wall and the extrapolation to 10^7, from a stored
    cost table alone: the wall uses the memory of the machine that *measured* (the table's
    ``usable_bytes`` column), never the machine that reads it. ``peak`` (the measuring
    machine's matmul peak at the study's threads) gives the extrapolation its lower bounds.
    An operation timed at the target P is reported as measured, never as extrapolated."""
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
    measured_target = ok[ok["params"] == p_target].set_index("op")["median_s"].to_dict()
    for r in fits:
        if r["op"] not in measured_target:
            extrap[f"{r['op']}_s"] = predict((r["exponent"], r["log_intercept"]), p_target)
    return {
        "fits": fit_frame, "ratios": ratios.reset_index(),
        "wall": {"predicted_params": wall_pred, "usable_bytes": usable,
                 "measured_max_params": int(newton_ok.max()) if len(newton_ok) else None,
                 "first_not_run": (newton_not.sort_values("params").iloc[0][
                     ["params", "status", "reason"]].to_dict() if len(newton_not) else None)},
        "extrapolation": extrap, "measured_at_target": measured_target,
        "extrapolation_table": extrapolation_table(frame, p_target, peak),
        "solve_slopes": local_slopes(frame, "solve"),
    }


def wall_table(frame: pd.DataFrame, info: dict[str, Any],
               peaks: list[dict[str, Any]] = ()) -> pd.DataFrame:
    """The Newton wall and the memory facts behind it (table ``newton_wall``): the model's
    wall on the measuring machine, the largest measured step, and each isolated peak
    measurement as a multiple of P²·4 bytes beside the model's multiple."""
    w = info["wall"]
    rows = [{"quantity": "newton wall (memory model)", "params": w["predicted_params"],
             "bytes": w["usable_bytes"], "p2_multiple": None,
             "model_p2_multiple": NEWTON_P2_FACTOR},
            {"quantity": "largest measured newton_step", "params": w["measured_max_params"],
             "bytes": None, "p2_multiple": None, "model_p2_multiple": None}]
    for r in peaks:
        p = int(r["params"])
        if r["op"] == "failed":  # the fresh process measured nothing: say why
            rows.append({"quantity": f"host peak not measured (fresh process): {r['reason']}",
                         "params": p, "bytes": None, "p2_multiple": None,
                         "model_p2_multiple": None})
            continue
        model = {"hessian": 1 + block_budget(p) / (p * p), "solve": 2.0,
                 "newton_step": newton_bytes(p) / (4.0 * p * p)}[r["op"]]
        rows.append({"quantity": f"{r['op']} host peak (fresh process)", "params": p,
                     "bytes": r["peak_p2"] * 4.0 * p * p, "p2_multiple": r["peak_p2"],
                     "model_p2_multiple": model})
    return pd.DataFrame(rows)


def local_slopes(frame: pd.DataFrame, op: str) -> list[tuple[int, float]]:
    """d log t / d log P between consecutive measured points of ``op``: (upper P, slope)."""
    g = frame[(frame["status"] == "ok") & (frame["op"] == op)].sort_values("params")
    pts = list(zip(g["params"], g["median_s"], strict=True))
    return [(int(b[0]), math.log(b[1] / a[1]) / math.log(b[0] / a[0]))
            for a, b in zip(pts, pts[1:], strict=False)]


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
    lines.append(f"Newton wall: predicted P <= {format_count(w['predicted_params'])} (Hessian, "
                 f"factor and blocks, {NEWTON_P2_FACTOR:g}·P²·4 B, in "
                 f"{format_bytes(w['usable_bytes'])} of the measuring machine); "
                 f"largest measured Newton step: P = {w['measured_max_params'] or 0:,}")
    if w["first_not_run"]:
        f = w["first_not_run"]
        lines.append(f"  first Newton step not run: P = {int(f['params']):,} ({f['status']}: "
                     f"{f['reason']})")
    table = analysis.get("extrapolation_table")
    if table is not None and len(table):
        lines.append(f"P = {TARGET_SPEC.num_params:,}: measured, or extrapolated (bound, model):")
        for _, r in table.iterrows():
            flag = "" if r["status"] == "ok" else f"  [{r['status']}]"
            lines.append(f"  {r['quantity']:<14} {human_seconds(r['seconds']):>12}  "
                         f"{r['bound']}: {r['model']}{flag}")
    if analysis.get("solve_slopes"):
        lines.append("dense solve local slope d log t / d log P: " + ", ".join(
            f"{k:.2f} (to P={p:,})" for p, k in analysis["solve_slopes"]))
    e = analysis["extrapolation"]
    lines.append(f"  Newton step memory {format_bytes(e['newton_bytes'])} (memory model)")
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
