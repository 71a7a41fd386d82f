"""One self-contained HTML report of everything mlpbench measured.

Data flows one way: results store → tidy frames (:mod:`mlpbench.results`) → tables and
figures (:mod:`mlpbench.report.figures`) → one page (jinja2 template, figures embedded as
PNG data URIs). A section without data says so and names the command that produces it.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from mlpbench.errors import UsageError
from mlpbench.report import figures as F
from mlpbench.results import load_asv, load_hardware, load_runs
from mlpbench.spec import MLPSpec
from mlpbench.summary import format_bytes


@dataclass
class Section:
    """One report section: prose, tables (HTML) and figures (data URIs)."""

    key: str
    title: str
    empty: str | None = None  # why there is no data, and how to get it
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, str]] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)

    def table(self, caption: str, frame: pd.DataFrame, **kw: Any) -> None:
        if "run_dir" in frame and frame["run_dir"].nunique() <= 1:
            frame = frame.drop(columns="run_dir")
        self.tables.append((caption, _html_table(frame, **kw)))

    def figure(self, caption: str, draw: Callable[[], Any]) -> None:
        self.figures.append((caption, F.to_data_uri(draw())))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:,.0f}" if abs(v) >= 1e5 else f"{v:.4g}"
    return str(v)


def _html_table(frame: pd.DataFrame, max_rows: int = 60) -> str:
    shown = frame.head(max_rows)
    html = shown.to_html(index=False, classes="data", border=0, na_rep="–",
                         formatters={c: _fmt for c in shown.columns})
    if len(frame) > max_rows:
        html += f"<p class='more'>… {len(frame) - max_rows} more rows in the CSV.</p>"
    return html


@dataclass
class ReportData:
    """Everything the report reads, as tidy frames."""

    runs: dict[str, pd.DataFrame]
    hardware: dict[str, dict[str, Any]]
    asv: pd.DataFrame
    asv_machines: dict[str, dict]
    sources: list[str]


def load_data(asv_results: str | os.PathLike | None, run_dirs: Sequence[str]) -> ReportData:
    """Read asv results and run folders; no input at all is a :class:`UsageError`."""
    if not asv_results and not run_dirs:
        raise UsageError("nothing to report: give --asv-results DIR and/or --runs DIR")
    runs = load_runs(run_dirs) if run_dirs else {}
    hardware = load_hardware(run_dirs) if run_dirs else {}
    asv, machines = (load_asv(asv_results) if asv_results else (pd.DataFrame(), {}))
    if not runs and asv.empty:
        raise UsageError("the given folders hold no results (all tables empty)")
    sources = [str(d) for d in run_dirs] + ([str(asv_results)] if asv_results else [])
    return ReportData(runs, hardware, asv, machines, sources)


# --------------------------------------------------------------------------- sections


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
        from mlpbench.sweep import crossover

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


def convergence_section(d: ReportData) -> Section:
    s = Section("convergence", "Optimizers: convergence to a target loss")
    traj, agg = d.runs.get("trajectories"), d.runs.get("converge_agg")
    conv = d.runs.get("converge")
    asv_conv = (d.asv[d.asv["benchmark"].str.startswith("bench_optimizers.Convergence")]
                if not d.asv.empty else pd.DataFrame())
    if traj is None and conv is None and asv_conv.empty and "minima" not in d.runs:
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
    if lr is not None:
        s.figure("Learning-rate sensitivity: final train loss against η (median over seeds)",
                 lambda: F.lr_sensitivity(lr, y="final_loss"))
        if lr["time_to_target"].notna().any():
            s.figure("Learning-rate sensitivity: time to target against η",
                     lambda: F.lr_sensitivity(lr[lr["time_to_target"].notna()],
                                              y="time_to_target"))
    if "lr_best" in d.runs:
        s.table("Best learning rate per optimizer", d.runs["lr_best"])
    if "minima" in d.runs:
        m = d.runs["minima"]
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
    from mlpbench.newton_cost import TARGET_SPEC, _human_seconds, analyse

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
            f"Newton wall on this machine: predicted P ≤ {w['predicted_params']:,} (dense "
            f"Hessian and its Cholesky factor in {format_bytes(w['usable_bytes'])}); largest "
            f"P whose Newton step was measured: {w['measured_max_params'] or 0:,}.")
        e = info["extrapolation"]
        rows = [{"quantity": "Newton step memory (Hessian + factor)",
                 "value": format_bytes(e["newton_bytes"]), "kind": "memory model"}]
        for key, label in (("hessian_s", "Hessian build"), ("solve_s", "dense solve"),
                           ("newton_step_from_parts_s", "one Newton step")):
            if key in e:
                rows.append({"quantity": label, "value": _human_seconds(e[key]),
                             "kind": "EXTRAPOLATION from fitted power laws"})
        for op, t in info["measured_at_target"].items():
            rows.append({"quantity": op, "value": _human_seconds(t), "kind": "measured"})
        s.table(f"P = {TARGET_SPEC.num_params:,} (d=100, n_h=1000, L=10)", pd.DataFrame(rows))
    conv = d.runs.get("newton_convergence")
    if conv is not None:
        s.table("Convergence per unit of cost (teacher–student, median over seeds; "
                "grad_equiv = gradient evaluations + measured HVP/grad ratio × HVPs)", conv)
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


SECTIONS = (machines_section, throughput_section, memory_section, convergence_section,
            newton_section, machines_compare_section, skipped_section)


def build_report(asv_results: str | os.PathLike | None, run_dirs: Sequence[str],
                 out: str | os.PathLike = "report.html", *, title: str = "mlpbench report") -> Path:
    """Write the report page; return its path."""
    started = time.perf_counter()
    data = load_data(asv_results, run_dirs)
    sections = [make(data) for make in SECTIONS]
    env = jinja2.Environment(loader=jinja2.PackageLoader("mlpbench.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]))
    html = env.get_template("report.html").render(
        title=title, sections=sections, sources=data.sources,
        generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        build_seconds=time.perf_counter() - started)
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write report {str(path)!r}: {exc.strerror or exc}") from None
    return path
