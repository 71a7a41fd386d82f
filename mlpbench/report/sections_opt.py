"""Report sections about optimizers: convergence, Newton vs first order, skipped points."""

from __future__ import annotations

import pandas as pd

from mlpbench.analysis.convergence import aggregate, lr_summary, minima_table
from mlpbench.analysis.newton import analyse
from mlpbench.report import figures as F
from mlpbench.report.page import ReportData, Section
from mlpbench.spec import TARGET_SPEC
from mlpbench.units import format_bytes, format_count, human_seconds


def convergence_section(d: ReportData) -> Section:
    s = Section("convergence", "Optimizers: convergence to a target loss")
    traj, agg = d.runs.get("trajectories"), d.runs.get("converge_agg")
    conv = d.runs.get("converge")
    if agg is None and conv is not None:
        agg = aggregate(conv)
    asv_conv = (d.asv[d.asv["benchmark"].str.startswith("bench_optimizers.Convergence")]
                if not d.asv.empty else pd.DataFrame())
    if traj is None and conv is None and asv_conv.empty and "minima" not in d.runs \
            and "minima_runs" not in d.runs:
        s.empty = "No convergence data. Run `mlpbench converge --minima --lr-grid 1e-4:1:9`."
        return s
    if traj is not None:
        targets = conv.groupby("workload")["target_loss"].first() if conv is not None else {}
        for w, g in traj.groupby("workload"):
            tgt = targets.get(w) if len(targets) else None
            s.figure(f"{w}: train loss against steps (median over seeds, IQR band)",
                     lambda g=g, tgt=tgt: F.loss_curves(g, x="step", target=tgt))
            s.figure(f"{w}: train loss against optimizer wall time",
                     lambda g=g, tgt=tgt: F.loss_curves(g, x="time_s", target=tgt))
    if agg is not None:
        s.table("Time to target over seeds: median [25%, 75%] (only seeds that reached it)",
                agg[["workload", "optimizer", "reached", "runs", "diverged", "steps_median",
                     "steps_q25", "steps_q75", "time_median", "time_q25", "time_q75",
                     "evals_median", "final_loss_median"]])
    lr = d.runs.get("lr_sensitivity")
    lr_best = d.runs.get("lr_best")
    if lr is not None and "seed" in lr:  # one row per run: aggregate here
        lr, lr_best = lr_summary(lr)
    if lr is not None:
        s.figure("Learning-rate sensitivity: final train loss against η (median over seeds)",
                 lambda: F.lr_sensitivity(lr, y="final_loss"))
        if lr["time_to_target"].notna().any():
            s.figure("Learning-rate sensitivity: time to target against η",
                     lambda: F.lr_sensitivity(lr[lr["time_to_target"].notna()],
                                              y="time_to_target"))
    if lr_best is not None:
        s.table("Best learning rate per optimizer", lr_best)
    minima = d.runs.get("minima")
    if minima is None and "minima_runs" in d.runs:
        minima = minima_table(d.runs["minima_runs"])
    if minima is not None:
        m = minima
        s.figure("GD vs SGD on the local-minima problem", lambda: F.minima_bars(m))
        s.table("GD vs SGD: seeds reaching the global minimum (target), stalled above it",
                m)
    if not asv_conv.empty:
        s.table("asv Convergence tracks", asv_conv[["machine", "benchmark", "workload",
                                                    "optimizer", "value", "unit", "status"]])
    return s


def newton_section(d: ReportData) -> Section:
    s = Section("newton", "Newton vs first order")
    cost = d.runs.get("newton_cost")
    if cost is None:
        s.empty = "No Newton cost data. Run `mlpbench newton-cost --per-cost`."
        return s
    for run_dir, g in cost.groupby("run_dir"):
        ok = g[g["status"] == "ok"]
        info = analyse(g)
        s.figure(f"Seconds per call against P, log–log, fitted exponents ({run_dir})",
                 lambda ok=ok, info=info: F.cost_scaling(ok, info["fits"]))
        s.table("Fitted scaling exponents (time ∝ P^k, largest measured points)", info["fits"])
        if len(info["ratios"]):
            s.table("HVP / gradient time, measured", info["ratios"])
        w = info["wall"]
        s.notes.append(
            f"Newton wall of the measuring machine: predicted P ≤ "
            f"{format_count(w['predicted_params'])} (dense Hessian and its Cholesky factor in "
            f"{format_bytes(w['usable_bytes'])}); largest P whose Newton step was measured: "
            f"{w['measured_max_params'] or 0:,}.")
        e = info["extrapolation"]
        rows = [{"quantity": "Newton step memory (Hessian + factor)",
                 "value": format_bytes(e["newton_bytes"]), "kind": "memory model"}]
        for key, label in (("hessian_s", "Hessian build"), ("solve_s", "dense solve"),
                           ("newton_step_from_parts_s", "one Newton step")):
            if key in e:
                rows.append({"quantity": label, "value": human_seconds(e[key]),
                             "kind": "EXTRAPOLATION from fitted power laws"})
        for op, t in info["measured_at_target"].items():
            rows.append({"quantity": op, "value": human_seconds(t), "kind": "measured"})
        s.table(f"P = {TARGET_SPEC.num_params:,} (d=100, n_h=1000, L=10)", pd.DataFrame(rows))
    conv = d.runs.get("newton_convergence")
    if conv is not None:
        s.table("Convergence per unit of cost (teacher–student, median over seeds; "
                "grad_equiv = gradient evaluations + measured HVP/grad ratio × HVPs)", conv)
    return s


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
                    bad["params"].map("{:,}".format)
                parts.append(pd.DataFrame({"source": kind, "point": what,
                                           "status": bad["status"], "reason": bad["reason"]}))
    if not d.asv.empty:
        bad = d.asv[d.asv["status"] != "ok"]
        if len(bad):
            parts.append(pd.DataFrame({
                "source": "asv " + bad["machine"], "point": bad["benchmark"] + "(" +
                bad["params"] + ")", "status": bad["status"],
                "reason": bad["status"].map({"skipped": "skipped in setup (no GPU, heavy "
                                             "without MLPBENCH_FULL=1, or too big); asv keeps "
                                             "no reason", "failed": "benchmark raised"})}))
    if not parts:
        s.empty = "Every point ran."
        return s
    allbad = pd.concat(parts, ignore_index=True)
    grouped = (allbad.groupby(["source", "status", "reason"]).agg(
        count=("point", "size"), examples=("point", lambda p: "; ".join(p.head(3))))
        .reset_index())
    s.table("Grouped by reason", grouped, max_rows=200)
    return s
