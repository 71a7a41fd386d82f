"""Report sections about hardware: machines, throughput, memory, machine vs machine."""

from __future__ import annotations

import math

import pandas as pd

from mlpbench.analysis.crossover import crossover
from mlpbench.report import figures as F
from mlpbench.report.page import ReportData, Section
from mlpbench.spec import MLPSpec
from mlpbench.units import format_bytes


def machines_section(d: ReportData) -> Section:
    s = Section("machines", "Machines measured")
    rows = []
    for mid, hw in d.hardware.items():
        gpus = ", ".join(f"{g['name']} ({format_bytes(g['memory_bytes'])})"
                         for g in hw.get("gpus", [])) or "none"
        rows.append({"machine_id": mid, "host": hw.get("hostname"), "cpu": hw.get("cpu_model"),
                     "cores (phys/log)": f"{hw.get('physical_cores')}/{hw.get('logical_cores')}",
                     "threads": hw.get("torch_threads"),
                     "RAM": format_bytes(hw.get("ram_bytes", 0)), "GPUs": gpus,
                     "torch": hw.get("torch"), "BLAS": hw.get("blas"),
                     "CPU capability": hw.get("cpu_capability")})
    for name, m in d.asv_machines.items():
        rows.append({"machine_id": f"asv:{name}", "host": m.get("machine"),
                     "cpu": m.get("cpu"), "cores (phys/log)": m.get("num_cpu"),
                     "RAM": format_bytes(int(m["ram"])) if str(m.get("ram", "")).isdigit()
                     else m.get("ram"), "GPUs": "", "torch": "", "BLAS": "",
                     "threads": "", "CPU capability": m.get("arch")})
    if not rows:
        s.empty = "No hardware descriptions found."
    else:
        s.table("Hardware descriptions recorded with the results", pd.DataFrame(rows))
    return s


def _asv_hardware_frame(asv: pd.DataFrame) -> pd.DataFrame:
    """asv TrainStep / ForwardBackward / Throughput rows with a parameter count."""
    if asv.empty:
        return asv
    hw = asv[asv["benchmark"].str.startswith("bench_hardware.")].copy()
    if hw.empty:
        return hw

    def params(r):
        try:
            d = int(r.get("input_dim", 100)) if not pd.isna(r.get("input_dim", 100)) else 100
            return MLPSpec(d, int(r["width"]), int(r["depth"])).num_params
        except (KeyError, ValueError, TypeError):
            return math.nan

    hw["P"] = hw.apply(params, axis=1)
    return hw


def throughput_section(d: ReportData) -> Section:
    s = Section("throughput", "Throughput against the measured peak")
    sweep = d.runs.get("sweep")
    asv_hw = _asv_hardware_frame(d.asv)
    if sweep is None and asv_hw.empty:
        s.empty = "No hardware sweep data. Run `mlpbench sweep --preset default`."
        return s
    if sweep is not None:
        ok = sweep[sweep["status"] == "ok"]
        if len(ok):
            for (dev, fw, dt), g in ok.groupby(["device", "framework", "dtype"]):
                g = g.assign(batch=g["batch"].map(lambda b: f"B={b}"))
                what = f"{fw} on {dev}, {dt}"
                if g.groupby(["params", "phase", "batch"]).size().max() > 1:
                    what += " (several networks share a P: the line shows their mean)"
                s.figure(f"Achieved GFLOP/s (matmul FLOPs) against P — {what}",
                         lambda g=g: F.throughput(g, y="gflops"))
                s.figure(f"Samples per second against P — {what}",
                         lambda g=g: F.throughput(g, y="samples_per_s"))
                s.figure(f"Fraction of the measured matmul peak — {what}",
                         lambda g=g: F.peak_fraction(g))
            best = (ok.sort_values("peak_fraction", ascending=False)
                    .groupby(["device", "framework", "phase"]).head(1))
            s.table("Best point per device, framework and phase",
                    best[["device", "framework", "phase", "input_dim", "width", "depth",
                          "batch", "params", "samples_per_s", "gflops", "peak_gflops",
                          "peak_fraction", "warnings"]])
            fw_cmp = _keras_overhead(ok)
            if len(fw_cmp):
                s.table("Keras (torch backend) over plain PyTorch: time ratio, same network",
                        fw_cmp)
        cross = crossover(sweep)
        if len(cross):
            s.table("CPU vs CUDA crossover: smallest P at which CUDA is faster", cross)
        else:
            s.notes.append("CPU-vs-CUDA crossover: needs both devices measured; "
                           + ("no CUDA point ran here." if not
                              (sweep["device"].str.startswith("cuda") & (sweep["status"] == "ok")
                               ).any() else "no common points."))
    if not asv_hw.empty:
        tp = asv_hw[(asv_hw["benchmark"].str.contains("Throughput.track_gflops"))
                    & (asv_hw["status"] == "ok")]
        if len(tp):
            s.table("asv Throughput.track_gflops (SGD train step, batch 1024)",
                    tp[["machine", "device", "width", "depth", "P", "value"]]
                    .rename(columns={"value": "GFLOP/s"}))
        ts = asv_hw[asv_hw["benchmark"].str.endswith("TrainStep.time_step")
                    & (asv_hw["status"] == "ok")].copy()
        if len(ts):
            ts["phase"] = "train_sgd"
            ts["params"] = ts["P"]
            ts["samples_per_s"] = ts["batch"].astype(float) / ts["value"]
            ts["batch"] = ts["machine"] + " B=" + ts["batch"].astype(str)
            s.figure("asv TrainStep (SGD): samples per second against P, per machine and batch",
                     lambda: F.throughput(ts, y="samples_per_s"))
    return s


def _keras_overhead(ok: pd.DataFrame) -> pd.DataFrame:
    keys = ["device", "dtype", "phase", "input_dim", "width", "depth", "batch"]
    t = ok[ok["framework"] == "torch"].set_index(keys)["median_s"]
    k = ok[ok["framework"] == "keras"].set_index(keys)["median_s"]
    both = pd.concat({"torch_s": t, "keras_s": k}, axis=1).dropna()
    if both.empty:
        return both
    both["keras/torch"] = both["keras_s"] / both["torch_s"]
    return both.reset_index()


def memory_section(d: ReportData) -> Section:
    s = Section("memory", "Memory: measured next to the model")
    sweep = d.runs.get("sweep")
    cost = d.runs.get("newton_cost")
    rows = []
    if sweep is not None:
        ok = sweep[sweep["status"] == "ok"]
        train = ok[ok["phase"] == "train_adam"]
        if "host_peak_rss" in train and train["host_peak_rss"].notna().any():
            net = train["host_peak_rss"] - train["host_baseline_rss"]
            rows.append(pd.DataFrame({"predicted_bytes": train["predicted_bytes"],
                                      "measured_bytes": net, "kind": "host RSS (per point)"}))
        if "cuda_peak_allocated" in ok:
            c = ok[ok["cuda_peak_allocated"].notna()]
            rows.append(pd.DataFrame({"predicted_bytes": c["predicted_bytes"],
                                      "measured_bytes": c["cuda_peak_allocated"],
                                      "kind": "CUDA peak allocated"}))
    if cost is not None and "host_peak_bytes" in cost:
        c = cost[(cost["status"] == "ok") & (cost["host_peak_bytes"] > 0)]
        c = c[c["op"].isin(["hessian", "solve", "newton_step"])]
        rows.append(pd.DataFrame({"predicted_bytes": c["predicted_bytes"],
                                  "measured_bytes": c["host_peak_bytes"],
                                  "kind": "Newton ops (host peak)"}))
    frame = pd.concat(rows) if rows else pd.DataFrame()
    frame = frame[(frame.get("measured_bytes", pd.Series(dtype=float)) > 0)] if len(frame) else frame
    if frame.empty:
        s.empty = ("No memory measurements. `mlpbench sweep` records host peak RSS per point "
                   "(fresh process) and CUDA peaks; `mlpbench newton-cost` records host peaks.")
        return s
    s.notes.append("Host RSS is measured above the process's RSS before the model was built; "
                   "it also counts allocator and library workspace, so small points sit above "
                   "the model. Points under the diagonal reused memory already mapped.")
    s.figure("Measured peak memory against the memory model (log–log)",
             lambda: F.measured_vs_model(frame))
    frame = frame.assign(ratio=frame["measured_bytes"] / frame["predicted_bytes"])
    s.table("Measured / model, by kind", frame.groupby("kind")["ratio"].describe()
            .reset_index()[["kind", "count", "min", "50%", "max"]])
    return s


def machines_compare_section(d: ReportData) -> Section:
    s = Section("compare", "Machine vs machine")
    frames = []
    if not d.asv.empty and d.asv["machine"].nunique() > 1:
        ok = d.asv[(d.asv["status"] == "ok") & d.asv["benchmark"].str.contains(".time_")]
        common = ok.groupby(["benchmark", "params"])["machine"].nunique()
        keep = common[common > 1].index
        ok = ok.set_index(["benchmark", "params"]).loc[keep].reset_index()
        if len(ok):
            ok["benchmark"] = ok["benchmark"].str.split(".").str[-2:].str.join(".") + \
                "(" + ok["params"] + ")"
            frames.append(ok[["benchmark", "machine", "value"]])
    sweep = d.runs.get("sweep")
    if sweep is not None and sweep["machine_id"].nunique() > 1:
        ok = sweep[sweep["status"] == "ok"].copy()
        ok["benchmark"] = (ok["device"] + " " + ok["phase"] + " P=" + ok["params"].astype(str)
                           + " B=" + ok["batch"].astype(str))
        frames.append(ok.rename(columns={"machine_id": "machine", "median_s": "value"})[
            ["benchmark", "machine", "value"]])
    if not frames:
        s.empty = "Only one machine's results are present."
        return s
    both = pd.concat(frames)
    top = both["benchmark"].drop_duplicates().head(30)
    both = both[both["benchmark"].isin(top)]
    s.figure("The same benchmarks on each machine (seconds, log scale)",
             lambda: F.machine_comparison(both))
    s.table("Values per machine", both.pivot_table(index="benchmark", columns="machine",
                                                   values="value").reset_index())
    return s
