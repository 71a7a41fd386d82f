"""Report section about memory: measured increase over the process baseline next to the model,
and how many bytes training a network of P parameters needs with each optimizer."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlpbench.optimizers import memory_model
from mlpbench.optimizers.newton import newton_bytes
from mlpbench.report import fig_hw
from mlpbench.report.page import ReportData, Section
from mlpbench.spec import MLPSpec
from mlpbench.units import format_bytes

#: the optimizers whose training memory the curves show (registry identifiers)
CURVE_OPTIMIZERS = ("sgd", "adam", "lbfgs[history=10]")
#: host increases below this are page-rounding noise, not a measurement (4 KiB pages)
MIN_MEASURED = 64 * 1024


def need_curves(widths=(16, 32, 64, 128, 256, 512, 1000, 2000, 4000), depth: int = 10,
                input_dim: int = 100, batch: int = 1024) -> pd.DataFrame:
    """Training bytes against P for the curve optimizers and exact Newton (memory model)."""
    rows = []
    for w in widths:
        spec = MLPSpec(input_dim, w, depth)
        for opt in CURVE_OPTIMIZERS:
            rows.append({"optimizer": opt, "params": spec.num_params,
                         "bytes": memory_model(spec, opt, "fp32", batch).training})
        rows.append({"optimizer": "newton (Hessian + factor)", "params": spec.num_params,
                     "bytes": newton_bytes(spec.num_params)})
    return pd.DataFrame(rows)


def _limits(d: ReportData) -> dict[str, int]:
    """Memory lines to draw: one per size, naming every machine that has it (two machines with
    the same RAM would otherwise print two labels on one line)."""
    by_size: dict[tuple[str, str], tuple[int, list[str]]] = {}  # sizes equal as printed
    for mid, hw in d.hardware.items():
        name = d.machine_name(mid).split(" (")[0]
        found = [("RAM", hw.get("ram_bytes"))] + [(g.get("name", "GPU"), g.get("memory_bytes"))
                                                 for g in hw.get("gpus") or []]
        for kind, size in found:
            if size:
                entry = by_size.setdefault((kind, format_bytes(int(size))), (int(size), []))
                entry[1].append(name)
    limits = {f"{kind} of {', '.join(dict.fromkeys(names))}": size
              for (kind, _), (size, names) in by_size.items()}
    return dict(list(limits.items())[:4])


def measured_frame(d: ReportData) -> pd.DataFrame:
    """Measured memory per phase next to the model: the host increase over the process's
    baseline (once per network point, compared with each phase's model) and CUDA peaks."""
    sweep, cost = d.runs.get("sweep"), d.runs.get("newton_cost")
    parts = []
    if sweep is not None and "host_peak_rss" in sweep:
        ok = sweep[(sweep["status"] == "ok") & sweep["host_peak_rss"].notna()]
        net = ok["host_peak_rss"] - ok["host_baseline_rss"]
        parts.append(pd.DataFrame({"machine_id": ok["machine_id"], "phase": ok["phase"],
                                   "kind": "host RSS increase, " + ok["framework"],
                                   "params": ok["params"], "batch": ok["batch"],
                                   "predicted_bytes": ok["predicted_bytes"],
                                   "measured_bytes": net}))
    if sweep is not None and "cuda_peak_allocated" in sweep:
        c = sweep[sweep["cuda_peak_allocated"].notna()]
        parts.append(pd.DataFrame({"machine_id": c["machine_id"], "phase": c["phase"],
                                   "kind": "CUDA peak allocated", "params": c["params"],
                                   "batch": c["batch"], "predicted_bytes": c["predicted_bytes"],
                                   "measured_bytes": c["cuda_peak_allocated"]}))
    if cost is not None and "host_peak_bytes" in cost:
        c = cost[(cost["status"] == "ok") & cost["op"].isin(["hessian", "solve", "newton_step"])]
        parts.append(pd.DataFrame({"machine_id": c["machine_id"], "phase": c["op"],
                                   "kind": "Newton op host increase", "params": c["params"],
                                   "batch": c["batch"], "predicted_bytes": c["predicted_bytes"],
                                   "measured_bytes": c["host_peak_bytes"]}))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if frame.empty:
        return frame
    frame = frame[(frame["measured_bytes"] >= MIN_MEASURED) & (frame["predicted_bytes"] > 0)]
    frame = frame.assign(ratio=frame["measured_bytes"] / frame["predicted_bytes"])
    return frame.assign(label=[f"{k} {p} P={int(n):,} B={int(b)}: measured {m / 2**20:,.1f} "
                               f"MiB, model {q / 2**20:,.1f} MiB" for k, p, n, b, m, q in zip(
                                   frame["kind"], frame["phase"], frame["params"],
                                   frame["batch"], frame["measured_bytes"],
                                   frame["predicted_bytes"], strict=True)])


def memory_section(d: ReportData) -> Section:
    s = Section("memory", "Memory: what training needs, and what was measured")
    curves = need_curves()
    limits = _limits(d)
    s.figure("Bytes to train P parameters (fp32, batch 1,024, depth 10, d=100) by the memory "
             "model: parameters, gradients, activations and optimizer state; Newton: dense "
             "Hessian and its factor. Horizontal lines: the measuring machines' memory.",
             lambda: fig_hw.memory_needed(curves, limits))
    s.table("Bytes to train, by the memory model (fp32, batch 1,024)", curves.assign(
        fits=[", ".join(n for n, b in limits.items() if v <= b) or "none"
              for v in curves["bytes"]]).rename(columns={"bytes": "training_bytes"}),
            name="memory-needed")
    frame = measured_frame(d)
    if frame.empty:
        s.notes.append("No memory measurements above page-rounding noise. `mlpbench sweep` "
                       "records host peak RSS per point (fresh process) and CUDA peaks; "
                       "`mlpbench newton-cost` records host peaks.")
        return s
    s.notes.append("Host RSS is measured once per network point (all its phases run in one "
                   "fresh process), as the increase over the process's RSS before the model "
                   "was built; it also counts allocator and library workspace. Increases under "
                   f"{MIN_MEASURED // 1024} KiB (page rounding) are left out.")
    s.figure("Measured increase over the baseline against the memory model (log–log)",
             lambda: fig_hw.measured_vs_model(frame))
    summary = frame.groupby(["kind", "phase"])["ratio"].agg(
        points="size", min_ratio="min", median_ratio="median", max_ratio="max").reset_index()
    s.table("Measured / model per kind and phase (×)", summary, name="memory-ratio")
    s.table("Measured memory per point", frame.drop(columns="label").sort_values(
        ["kind", "phase", "params"]), name="memory-points")
    big = frame[frame["predicted_bytes"] >= 2**26]
    if len(big):
        s.notes.append(f"For points whose model is ≥ 64 MiB the measured/model ratio spans "
                       f"{np.nanmin(big['ratio']):.2g}×–{np.nanmax(big['ratio']):.2g}× "
                       "(below that, the interpreter and library workspace dominate).")
    return s
