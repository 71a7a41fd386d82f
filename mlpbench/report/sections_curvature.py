"""Report section: between Newton and SGD — the structured-curvature optimizers' cost per
step, their memory, and the curvature wall."""

from __future__ import annotations

import pandas as pd

from mlpbench.analysis.curvature import (
    default_steps,
    extrapolation,
    flop_model,
    headline,
    memory_check,
    memory_curves,
    memory_walls,
    step_costs,
)
from mlpbench.devices import MEMORY_FRACTION
from mlpbench.report import fig_curvature
from mlpbench.report.page import ReportData, Section
from mlpbench.spec import TARGET_SPEC

_NEWTON_OPS = ("newton_step", "newton_cg_step")


def curvature_section(d: ReportData) -> Section:
    s = Section("curvature", "Between Newton and SGD: structured curvature")
    rows = d.runs.get("curvature_cost")
    if rows is None or rows.empty:
        s.empty = "No curvature cost data. Run `mlpbench curvature-cost`."
        return s
    for mid_raw, g in rows.groupby("machine_id"):
        _machine(s, d, mid_raw, g)
    return s


def _budget(d: ReportData, mid_raw) -> float | None:
    ram = (d.hardware.get(str(mid_raw)) or {}).get("ram_bytes")
    return float(ram) * MEMORY_FRACTION if ram else None


def _newton_steps(d: ReportData, mid_raw) -> pd.DataFrame:
    cost = d.runs.get("newton_cost")
    if cost is None or "machine_id" not in cost:
        return pd.DataFrame()
    g = cost[(cost["machine_id"] == mid_raw) & (cost["status"] == "ok")
             & cost["op"].isin(_NEWTON_OPS)]
    g = g.groupby(["op", "params"], as_index=False)["median_s"].median()
    return g.rename(columns={"op": "method", "median_s": "step_s"})


def _machine(s: Section, d: ReportData, mid_raw, g: pd.DataFrame) -> None:
    mid = d.machine_name(mid_raw)
    costs = step_costs(g)
    steps = default_steps(costs)
    steps = pd.concat([steps[["params", "method", "step_s"]] if len(steps) else steps,
                       _newton_steps(d, mid_raw)], ignore_index=True)
    budget = _budget(d, mid_raw)
    curves = memory_curves()
    s.figure(f"The curvature wall on {mid}: bytes of a training step against P from the "
             "closed forms (left; the line is this machine's usable memory), and seconds per "
             "step measured, amortised at each library's default preconditioner frequency "
             "(Newton steps from the Newton study on the same machine, when present)",
             lambda: fig_curvature.curvature_wall(curves, steps, budget))
    line = headline(costs)
    if line:
        s.notes.append(f"{mid}: {line}.")
    s.notes.append("Timings were taken on the machine named, often shared: see the SUMMARY "
                   "beside the committed results for the load during the run.")
    if len(costs):
        big = costs[costs["params"] >= costs["params"].max() / 100]
        s.table(f"Step cost on {mid}: update and cheap steps, amortised at the default k, "
                "as multiples of an SGD and an Adam step at the same P", big,
                name=f"curvature-steps-{mid}")
    flops = flop_model(costs)
    if len(flops):
        s.table(f"Preconditioner refresh on {mid} beside its FLOP model (Σ n³ over the "
                "Kronecker factors; ns per n³ = measured extra seconds of an update step)",
                flops, name=f"curvature-flops-{mid}")
    mem = memory_check(g)
    if len(mem):
        s.table(f"State memory on {mid}: model vs the state the library allocated, and the "
                "RSS peak vs the modelled gradients + activations + state", mem,
                name=f"curvature-memory-{mid}")
    if budget:
        s.table(f"Memory walls on {mid} (usable {budget / 2 ** 30:.1f} GiB)",
                memory_walls(curves, budget), name=f"curvature-walls-{mid}")
    methods = tuple(dict.fromkeys(g["method"]))
    s.table(f"At P = {TARGET_SPEC.num_params:,} and beyond on {mid}: state memory (closed "
            "form) and seconds per step (measured, or EXTRAPOLATION from a fitted power law)",
            extrapolation(costs, methods), name=f"curvature-extrapolation-{mid}")
    comp = g[g["compiled"].astype(bool)]
    if len(comp):
        s.table(f"heavyball compiled (torch.compile) on {mid}: first call (compilation) and "
                "warm step", comp[["params", "method", "variant", "status", "first_call_s",
                                    "median_s"]], name=f"curvature-compiled-{mid}")
