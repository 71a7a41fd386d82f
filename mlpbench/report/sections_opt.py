"""Report section about optimizers: convergence to a target loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from mlpbench.analysis.card import tuned_best
from mlpbench.analysis.convergence import aggregate, lr_summary
from mlpbench.analysis.curves import aggregate_curves, performance_profile
from mlpbench.report import fig_opt
from mlpbench.report.page import ReportData, Section


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of k successes in n trials (NaN for n = 0)."""
    if n <= 0:
        return float("nan"), float("nan")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def with_ci(table: pd.DataFrame, k: str, n: str, prefix: str = "ci") -> pd.DataFrame:
    """``table`` with the Wilson interval of ``k``/``n`` as ``{prefix}_low``/``_high``."""
    cis = [wilson(a, b) for a, b in zip(table[k], table[n], strict=True)]
    return table.assign(**{f"{prefix}_low": [c[0] for c in cis],
                           f"{prefix}_high": [c[1] for c in cis]})


def _curves(d: ReportData, s: Section, conv: pd.DataFrame | None) -> None:
    traj = d.runs.get("trajectories")
    if traj is None:
        return
    targets = (conv.groupby("workload")["target_loss"].first() if conv is not None
               else pd.Series(dtype=float))
    xs = [x for x in ("step", "time_s", "grad_evals") if x in traj and traj[x].notna().any()]
    s.notes.append("Loss curves: each seed is interpolated onto one common grid before the "
                   "median and quartiles are taken (a seed that stopped at the target holds "
                   "its last loss), so every point aggregates every seed. Line: median; band: "
                   "25–75%; dotted: the target. Each optimizer keeps one colour, marker and dash in every "
                   "figure; where two curves coincide (adam and adamw on these problems, often "
                   "adagrad and rmsprop) the dash tells them apart and the hover lists both.")
    for w, g in traj.groupby("workload"):
        tgt = targets.get(w)
        curves = {x: aggregate_curves(g, x=x, log=x != "step") for x in xs}
        s.figure(f"{w}: train loss against steps, optimizer wall time and gradient "
                 "evaluations (rows), by optimizer family (columns)",
                 lambda c=curves, t=tgt: fig_opt.loss_grid(c, target=t))
        if "test_loss" in g and g["test_loss"].notna().any():
            tc = {"step": aggregate_curves(g, x="step", y="test_loss")}
            s.figure(f"{w}: test loss against steps (median, quartile band)",
                     lambda c=tc: fig_opt.loss_grid(c, ylabel="test loss"))


def _profiles(s: Section, agg: pd.DataFrame) -> None:
    if agg["workload"].nunique() < 2:
        return
    solved = agg.assign(time_median=agg["time_median"].where(agg["success_rate"] >= 0.5),
                        evals_median=agg["evals_median"].where(agg["success_rate"] >= 0.5))
    for value, label in (("time_median", "wall time"), ("evals_median", "gradient evaluations")):
        prof = performance_profile(solved, value=value)
        s.figure(f"Performance profile by {label}: fraction of the "
                 f"{agg['workload'].nunique()} workloads an optimizer solves (≥ 50% of seeds "
                 f"at target) within τ × the best optimizer's median {label}",
                 lambda p=prof, lab=label: fig_opt.profile(p, xlabel=f"τ ({lab} / best)"))


def _lr(d: ReportData, s: Section) -> None:
    lr = d.runs.get("lr_sensitivity")
    if lr is None:
        return
    if "seed" in lr:  # one row per run: aggregate here
        n = lr.groupby([k for k in ("workload", "base", "lr") if k in lr]).size()
        best = tuned_best(d.runs)  # the table the summary card's tuned winner comes from
        lr = lr_summary(lr)[0].merge(n.rename("runs").reset_index(), how="left")
    else:
        best = d.runs.get("lr_best")
    lr = lr.assign(workload=lr["workload"] if "workload" in lr else "all")
    for w, g in lr.groupby("workload"):
        s.figure(f"{w}: learning-rate sensitivity — final train loss and fraction of seeds "
                 "reaching the target against η (failed and diverged runs stay visible)",
                 lambda g=g: fig_opt.lr_panel(g))
    s.table("Learning-rate grid: success rate, divergence, median time and final loss per η",
            lr, name="lr-grid")
    if best is not None:
        s.table("Best learning rate per workload and optimizer (most seeds at target, then "
                "fastest)", best, name="lr-best")


def convergence_section(d: ReportData) -> Section:
    s = Section("convergence", "Optimizers: convergence to a target loss")
    conv = d.runs.get("converge")
    agg = aggregate(conv) if conv is not None else d.runs.get("converge_agg")
    if all(k not in d.runs for k in ("trajectories", "converge", "converge_agg",
                                     "lr_sensitivity")):
        s.empty = "No convergence data. Run `mlpbench converge --lr-grid 1e-4:1:9`."
        return s
    _curves(d, s, conv)
    if agg is not None:
        if "success_rate" not in agg:
            agg = agg.assign(success_rate=agg["reached"] / agg["runs"])
        agg = with_ci(agg, "reached", "runs", "success_ci")
        _profiles(s, agg)
        cols = [c for c in ("workload", "optimizer", "runs", "reached", "success_rate",
                            "success_ci_low", "success_ci_high", "diverged", "steps_median",
                            "steps_q25", "steps_q75", "time_median", "time_q25", "time_q75",
                            "evals_median", "evals_q25", "evals_q75", "final_loss_median")
                if c in agg]
        s.table("Time to target (s), steps and gradient evaluations over seeds: median [q25, q75] "
                "over the seeds that reached it; "
                "success rate with its 95% Wilson interval", agg[cols].sort_values(
                    ["workload", "time_median"]), name="to-target")
    _lr(d, s)
    if conv is not None and "final_test_loss" in conv:
        test = conv.groupby(["workload", "optimizer"]).agg(
            final_train_loss=("final_loss", "median"),
            final_test_loss=("final_test_loss", "median")).reset_index()
        test["test/train (×)"] = test["final_test_loss"] / test["final_train_loss"]
        s.table("Final train and test loss (median over seeds)",
                test.replace([np.inf, -np.inf], np.nan), name="test-loss")
    return s
