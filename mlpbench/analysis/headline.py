"""The headline facts of a set of results (pure functions over stored tables): per machine and
device, the fraction of the measured peak, the best configuration per phase, the CPU/CUDA
crossover, the fastest optimizer to target, the Newton wall and the 10^7 extrapolation.

Each fact is a dict ``{"machine", "device", "topic", "fact", "section"}``; ``section`` is the
report anchor that shows the evidence.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from mlpbench.analysis.card import best_points, compile_series, mode_comparison, point_medians
from mlpbench.analysis.convergence import aggregate
from mlpbench.analysis.crossover import crossover
from mlpbench.analysis.modes import over_runs
from mlpbench.analysis.newton import analyse
from mlpbench.analysis.newton_extrap import step_range
from mlpbench.problems.modes import peak_mode
from mlpbench.spec import TARGET_SPEC
from mlpbench.units import format_bytes, format_count, human_seconds

Fact = dict[str, Any]


def _fact(machine: str, device: str, topic: str, fact: str, section: str) -> Fact:
    return {"machine": machine, "device": device, "topic": topic, "fact": fact,
            "section": section}


def _config(r: pd.Series) -> str:
    """The network and every execution axis of a sweep row (mode, precision, threads)."""
    axes = [str(r[k]) for k in ("mode", "dtype") if k in r and pd.notna(r[k])]
    if "threads" in r and pd.notna(r["threads"]):
        axes.append(f"{int(r['threads'])} thread{'s' if int(r['threads']) != 1 else ''}")
    return (f"d={int(r['input_dim'])}, w={int(r['width'])}, L={int(r['depth'])}, "
            f"B={int(r['batch'])} (P={int(r['params']):,})"
            + (f", {', '.join(axes)}" if axes else ""))


def sweep_facts(sweep: pd.DataFrame) -> list[Fact]:
    """Fraction of peak (best, and at the 10^7 network), best configuration per phase (the
    Throughput section's best-point table), and the crossover, per machine and device."""
    ok = sweep[(sweep["status"] == "ok") & sweep["peak_fraction"].notna()]
    # repeated points (two runs of one machine) count once, at their median, as in the
    # report's throughput tables
    ok = point_medians(ok) if len(ok) else ok
    table = best_points(sweep)
    facts: list[Fact] = []
    for (mid, dev), g in (ok.groupby(["machine_id", "device"]) if len(ok) else []):
        torch_rows = g[g["framework"] == "torch"] if (g["framework"] == "torch").any() else g
        at = torch_rows[torch_rows["params"] == TARGET_SPEC.num_params]
        if len(at):
            r = at.loc[at["peak_fraction"].idxmax()]
            facts.append(_fact(mid, dev, "fraction of peak",
                               f"at the 10^7 network: up to {r['peak_fraction']:.0%} "
                               f"({r['phase']}, B={int(r['batch'])})", "throughput"))
        fw = torch_rows["framework"].iloc[0]
        best = table[(table["machine_id"] == mid) & (table["device"] == dev)
                     & (table["framework"] == fw)]
        for r in best.itertuples():
            r = pd.Series(r._asdict())
            facts.append(_fact(mid, dev, "best configuration",
                               f"{r['phase']}: {r['peak_fraction']:.0%} of peak "
                               f"({r['gflops']:,.0f} GFLOP/s, {r['samples_per_s']:,.0f} "
                               f"samples/s) at {_config(r)}", "throughput"))
    cross = crossover(sweep)
    for _, r in cross.iterrows():
        where = ("never in this grid" if math.isnan(r["crossover_params"])
                 else f"CUDA faster from P = {int(r['crossover_params']):,}")
        facts.append(_fact("all", "cpu vs cuda", "crossover",
                           f"{r['phase']} ({r['framework']}, B={r['batch']}): {where}",
                           "throughput"))
    return facts


def optimizer_facts(converge: pd.DataFrame) -> list[Fact]:
    """Fastest optimizer to target per workload, by median wall time and by median gradient
    evaluations, among optimizers whose seeds mostly (≥ 50%) reached the target."""
    facts: list[Fact] = []
    agg = aggregate(converge)
    mids = converge.groupby("workload")["machine_id"].first() if "machine_id" in converge \
        else {}
    devs = converge.groupby("workload")["device"].first() if "device" in converge else {}
    for w, g in agg.groupby("workload"):
        good = g[g["success_rate"] >= 0.5]
        if good.empty:
            facts.append(_fact(mids.get(w, ""), devs.get(w, ""), "fastest optimizer",
                               f"{w}: no optimizer reached the target in most seeds",
                               "convergence"))
            continue
        t = good.loc[good["time_median"].idxmin()]
        e = good.loc[good["evals_median"].idxmin()]
        facts.append(_fact(mids.get(w, ""), devs.get(w, ""), "fastest optimizer",
                           f"{w}: by wall time {t['optimizer']} ({human_seconds(t['time_median'])}"
                           f" median, {int(t['reached'])}/{int(t['runs'])} seeds); by gradient "
                           f"evaluations {e['optimizer']} ({e['evals_median']:,.1f}) — each "
                           "at the hyperparameters it ran with (defaults unless named; the "
                           "learning-rate grid is in the convergence section)", "convergence"))
    return facts


def _stored_extrapolation(stored: pd.DataFrame | None, mid: str) -> pd.DataFrame | None:
    """The stored ``newton_extrapolation`` rows of machine ``mid`` (with bounds), if any."""
    if stored is None or "bound" not in stored or "machine_id" not in stored:
        return None
    rows = stored[stored["machine_id"] == mid]
    return rows if len(rows) else None


def newton_step_fact(table: pd.DataFrame | None, newton_bytes: int, span: str) -> str:
    """One headline for the Newton step at the target: its memory and the range from the sum
    of the parts' lower bounds to the upper estimate, naming what each end assumes."""
    head = f"P = {TARGET_SPEC.num_params:,}: a Newton step needs {format_bytes(newton_bytes)}"
    ends = step_range(table)
    if ends is None:
        return head + " (no physically bounded time range: no measured matmul peak stored)"
    low, high = ends
    return (f"{head} and {human_seconds(low['seconds'])} to {human_seconds(high['seconds'])} "
            f"(EXTRAPOLATED{span}): the low end is a lower bound (the Hessian's tangent matmul "
            "FLOPs and one Cholesky factorization, no retry, both at the measured matmul "
            "peak), the high end an upper estimate (P sequential HVPs at the HVP time "
            "measured at that P, and the Levenberg–Marquardt retries measured at the largest "
            "solved P at the factorization rate measured there)")


def newton_facts(cost: pd.DataFrame, stored: pd.DataFrame | None = None) -> list[Fact]:
    """The Newton wall of each measuring machine and the 10^7 extrapolation: the stored
    ``newton_extrapolation`` table (``stored``) when it has bounds, else re-derived from the
    cost table (without lower bounds: the matmul peak is not part of it)."""
    facts: list[Fact] = []
    by = "machine_id" if "machine_id" in cost else "run_dir"
    for mid, g in cost.groupby(by):
        info = analyse(g)
        dev = str(g["device"].iloc[0])
        w = info["wall"]
        if w["predicted_params"]:
            facts.append(_fact(mid, dev, "Newton wall",
                               f"dense Newton fits up to P ≈ {format_count(w['predicted_params'])}"
                               f" in {format_bytes(w['usable_bytes'])}; largest measured "
                               f"P = {w['measured_max_params'] or 0:,}", "newton"))
        pmax = w["measured_max_params"]
        span = (f", {TARGET_SPEC.num_params / pmax:,.0f}× beyond the largest P whose Newton "
                f"step was timed ({pmax:,})" if pmax else "")
        table = _stored_extrapolation(stored, mid)
        table = info["extrapolation_table"] if table is None else table
        facts.append(_fact(mid, dev, "10^7 extrapolation",
                           newton_step_fact(table, info["extrapolation"]["newton_bytes"],
                                            span), "newton"))
    return facts


def _study(runs: dict[str, pd.DataFrame], kind: str, *tables: str) -> pd.DataFrame:
    """A comparison from the study's tables, else from the sweep's rows."""
    found = [runs[t] for t in tables if t in runs and len(runs[t])]
    if found:
        return pd.concat(found, ignore_index=True)
    sweep = runs.get("sweep")
    return over_runs(sweep, kind) if sweep is not None else pd.DataFrame()


def modes_facts(runs: dict[str, pd.DataFrame]) -> list[Fact]:
    """torch.compile's speedup range over P, the thread efficiency and the precision speedup
    per machine (medians over runs)."""
    facts: list[Fact] = []
    series = compile_series(mode_comparison(runs, "compile", "modes_compile",
                                            "modes_preset"))
    for r in series.itertuples():
        n = f"all {int(r.runs)} runs" if r.runs > 1 else "its one run"
        where = ("faster than eager in " + n + " at some size" if r.best_floor > 1
                 else "at no size faster than eager in " + n)
        facts.append(_fact(r.machine_id, str(getattr(r, "device", "")), "torch.compile",
                           f"{r.phase} (d={int(r.input_dim)}, L={int(r.depth)}, "
                           f"B={int(r.batch)}, {int(r.threads)} thr): {r.speedup_low:.2f}× "
                           f"to {r.speedup_high:.2f}× over {int(r.sizes)} sizes; {where}",
                           "modes"))
    thr = _study(runs, "threads", "modes_threads")
    thr = thr[thr["threads"] > thr["base_threads"]] if "base_threads" in thr else \
        thr[thr["threads"] > 1] if len(thr) else thr
    for mid, g in (thr.groupby("machine_id") if len(thr) else []):
        n = int(g["threads"].max())
        g = g[g["threads"] == n]
        facts.append(_fact(mid, str(g["device"].iloc[0]) if "device" in g else "", "threads",
                           f"{n} threads: parallel efficiency {g['efficiency'].min():.2f} to "
                           f"{g['efficiency'].max():.2f} over {g['params'].nunique()} sizes "
                           f"(P = {int(g['params'].min()):,} to {int(g['params'].max()):,})",
                           "modes"))
    prec = _study(runs, "precision", "modes_precision")
    for (mid, dtype), g in (prec.groupby(["machine_id", "dtype"]) if len(prec) else []):
        r = g.loc[g["params"].idxmax()] if "train_sgd" not in set(g["phase"]) else \
            g[g["phase"] == "train_sgd"].sort_values("params").iloc[-1]
        frac = (f", {r['peak_fraction']:.0%} of the {peak_mode(dtype)} peak"
                if pd.notna(r.get("peak_fraction")) else "")
        facts.append(_fact(mid, str(r.get("device", "")), "precision",
                           f"{dtype} vs fp32, {r['phase']} at P = {int(r['params']):,}: "
                           f"{r['speedup']:.2f}× fp32's speed{frac}", "modes"))
    return facts


def headline(runs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """All facts found in ``runs`` (the tables of :func:`mlpbench.results.load_runs`)."""
    facts: list[Fact] = []
    if "sweep" in runs and "peak_fraction" in runs["sweep"]:
        facts += sweep_facts(runs["sweep"])
    if "converge" in runs:
        facts += optimizer_facts(runs["converge"])
    if "newton_cost" in runs:
        facts += newton_facts(runs["newton_cost"], runs.get("newton_extrapolation"))
    facts += modes_facts(runs)
    if "curvature_cost" in runs:
        facts += curvature_facts(runs["curvature_cost"])
    return pd.DataFrame(facts, columns=["machine", "device", "topic", "fact", "section"])


def curvature_facts(costs: pd.DataFrame) -> list[Fact]:
    """Where the structured-curvature family stands at 10^7, per machine: SOAP's step as a
    multiple of Adam's and its state (:func:`mlpbench.analysis.curvature.headline`)."""
    from mlpbench.analysis.curvature import headline as curvature_headline
    from mlpbench.analysis.curvature import step_costs

    out = []
    for (mid, dev), g in costs.groupby(["machine_id", "device"]) if "machine_id" in costs \
            else []:
        line = curvature_headline(step_costs(g))
        if line:
            out.append(_fact(str(mid), str(dev), "Structured curvature at 10^7", line,
                            "curvature"))
    return out
