"""Report sections about hardware: machines measured, throughput against the peak."""

from __future__ import annotations

import pandas as pd

from mlpbench.analysis.card import best_points, point_medians
from mlpbench.analysis.compare import machine_identities
from mlpbench.analysis.crossover import crossover
from mlpbench.point import POINT_KEYS
from mlpbench.report import fig_hw
from mlpbench.report.page import ReportData, Section
from mlpbench.results import CHECKED_METADATA
from mlpbench.units import format_bytes


def machines_section(d: ReportData) -> Section:
    s = Section("machines", "Machines measured")
    ident = machine_identities(d.hardware, d.asv_machines)
    rows = []
    for mid, hw in d.hardware.items():
        gpus = ", ".join(f"{g.get('name')} ({format_bytes(g.get('memory_bytes') or 0)})"
                         for g in hw.get("gpus", []) or []) or "none"
        rows.append({"name": str(mid), "host": hw.get("hostname"), "cpu": hw.get("cpu_model"),
                     "cores (phys/log)": f"{hw.get('physical_cores')}/{hw.get('logical_cores')}",
                     "RAM": format_bytes(int(hw.get("ram_bytes") or 0)), "GPUs": gpus,
                     "torch": hw.get("torch"), "BLAS": hw.get("blas"),
                     "CPU capability": hw.get("cpu_capability")})
    for name, m in d.asv_machines.items():
        ram = m.get("ram")
        rows.append({"name": f"asv:{name}", "host": m.get("machine"), "cpu": m.get("cpu"),
                     "cores (phys/log)": f"?/{m.get('num_cpu')}",
                     "RAM": format_bytes(int(ram)) if str(ram).isdigit() else ram,
                     "GPUs": "not recorded by asv", "torch": "", "BLAS": "",
                     "CPU capability": m.get("arch")})
    s.notes += d.load_notes
    if not rows:
        s.empty = "No hardware descriptions found."
        return s
    frame = pd.DataFrame(rows).merge(ident[["name", "identity"]], on="name", how="left")
    frame.insert(0, "machine", frame.pop("identity"))
    dup = frame.groupby("machine")["name"].agg(list)
    for machine, names in dup.items():
        if len(names) > 1:
            s.notes.append(f"{', '.join(names)} are one machine, <b>{machine}</b> (same CPU "
                           "model, core count and RAM): shown as one identity throughout.")
    s.table("Hardware recorded with the results (one row per name a machine goes by)", frame,
            name="machines")
    return s


def _series(g: pd.DataFrame) -> pd.Series:
    return "L=" + g["depth"].astype(str) + ", B=" + g["batch"].astype(str)


_medians = point_medians  # one definition, shared with the summary card


def throughput_section(d: ReportData) -> Section:
    s = Section("throughput", "Throughput against the measured peak")
    sweep = d.runs.get("sweep")
    if sweep is None or "median_s" not in sweep:
        s.empty = "No hardware sweep data. Run `mlpbench sweep --preset default`."
        return s
    ok = sweep[(sweep["status"] == "ok") & sweep["median_s"].notna()]
    if ok.empty:
        s.empty = "The sweep holds no successful point (see Skipped and failed points)."
        return s
    med = _medians(ok)
    s.notes.append("One line per depth L and batch B, joining the widths (64, 256, 1000...) "
                   "in P order; error bars: the throughput at median time ± IQR/2. Hover a "
                   "point for its configuration and spread.")
    eager = med[med["mode"] == "eager"] if "mode" in med else med
    if len(eager) < len(med):
        s.notes.append("Figures show eager execution; the best-point and all-points tables "
                       "include every mode (compiled rows among them), compared with eager "
                       "under Execution modes.")
    by = ["machine_id", "device", "framework", "dtype", "threads"]
    for (mid, dev, fw, dt, n), g in eager.groupby(by, dropna=False):
        g = g.assign(series=_series(g))
        many = eager.groupby(by[:4], dropna=False)["threads"].nunique().max() > 1
        what = f"{fw} on {dev}, {dt}, {d.machine_name(mid)}" + (f", {int(n)} threads" if many else "")
        peak = g["peak_gflops"].dropna()
        peak = float(peak.median()) if len(peak) else None
        yard = ("the median matmul yardstick timed beside the points" if "peak_fraction_lo" in g
                and g["peak_fraction_lo"].notna().any() else "the measured matmul peak")
        s.figure(f"Achieved GFLOP/s against P per phase — {what}"
                 + (f"; right axis: fraction of {yard} ({peak:,.0f} GFLOP/s)" if peak else ""),
                 lambda g=g, peak=peak: fig_hw.throughput_panels(g, y="gflops", peak=peak))
    flagged = int((med["contention"] != "").sum())
    if flagged:
        s.notes.append(f"{flagged} of {len(med)} points were measured only on a busy machine "
                       "(contention evidence: load, CPU share, context switches, steal, the "
                       "yardstick's spread): drawn hollow, the reason on hover, and left out of "
                       "the best-point table.")
    s.table("Best point per machine, device, framework and phase (clean points only)",
            best_points(sweep), name="best-points")
    fw_cmp = keras_overhead(eager)
    if len(fw_cmp):
        s.table("Keras (torch backend) over plain PyTorch: time ratio of the same network",
                fw_cmp, name="keras-overhead")
    cross = crossover(sweep)
    if len(cross):
        s.table("CPU vs CUDA crossover: smallest P at which CUDA is faster", cross,
                name="crossover")
    else:
        has_cuda = (sweep["device"].astype(str).str.startswith("cuda")
                    & (sweep["status"] == "ok")).any()
        s.notes.append("CPU-vs-CUDA crossover: needs both devices measured; " +
                       ("no CUDA point ran here." if not has_cuda else "no common points."))
    s.table("All sweep points (medians over repeated runs)", med, name="sweep-points")
    return s


def keras_overhead(med: pd.DataFrame) -> pd.DataFrame:
    """Keras / torch time of the same network per machine (``med`` has one row per point)."""
    keys = ["machine_id", *CHECKED_METADATA, *(k for k in POINT_KEYS if k != "framework"),
            "phase"]
    keys = [k for k in keys if k in med]
    t = med[med["framework"] == "torch"].groupby(keys)["median_s"].median()
    k = med[med["framework"] == "keras"].groupby(keys)["median_s"].median()
    both = pd.concat({"torch_s": t, "keras_s": k}, axis=1).dropna()
    if both.empty:
        return both
    both["keras/torch"] = both["keras_s"] / both["torch_s"]
    return both.reset_index()
