"""Execution modes on this machine: compile vs eager, precision, threads, the default preset.

Each study is a sweep run ``--reps`` times into ``OUT/<study>/rep<k>/`` (resumable); within a
rep the modes / precisions / thread counts of one network are measured back to back, so
repeats interleave A B A B. ``os.getloadavg()`` is recorded before and after every rep in
``OUT/<study>/runs.json`` (with the wall time of the rep). ``summarize`` reads only those
files and writes ``OUT/<study>.csv`` tables that SUMMARY.md quotes.

Usage::

    python scripts/bench_modes.py compile|precision|threads|preset [--reps N] [--out DIR]
    python scripts/bench_modes.py machine|summarize [--out DIR]

Run from the repository root with ``PYTHONPATH=.`` (or mlpbench installed).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pandas as pd

from mlpbench.analysis.modes import over_runs
from mlpbench.measure.timing import TimerConfig
from mlpbench.problems.modes import inductor_cache_dir
from mlpbench.results import read_table
from mlpbench.studies.sweep import SweepConfig, preset, run_sweep

OUT = Path("results/runs/intel-xeon-2c/modes")
TIMER = TimerConfig(budget_s=0.5, max_samples=50)
#: d=100, L=2: P = w^2 + 103 w + 1 -> 1,131 ... 9,309,001 parameters
COMPILE_WIDTHS = (10, 32, 100, 300, 1000, 3000)


def configs() -> dict[str, SweepConfig]:
    base = dict(devices=("cpu",), input_dims=(100,), timer=TIMER)
    return {
        "compile": SweepConfig(**base, widths=COMPILE_WIDTHS, depths=(2,), batches=(256,),
                               phases=("infer", "train_sgd"), modes=("eager", "compile"),
                               threads=1),
        "precision": SweepConfig(**base, widths=(1000,), depths=(10,), batches=(1024,),
                                 phases=("infer", "train_sgd"),
                                 dtypes=("fp32", "bf16", "bf16-autocast"), threads=1),
        "threads": SweepConfig(**base, widths=(100, 300, 1000), depths=(2,), batches=(256,),
                               phases=("infer", "train_sgd"), threads=(1, 2)),
        "preset": preset("default", modes=("eager", "compile")),
    }


def run_study(name: str, reps: int, out: Path) -> None:
    cfg = configs()[name]
    log_path = out / name / "runs.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else []
    for k in range(1, reps + 1):
        folder = out / name / f"rep{k}"
        if any(e["rep"] == k and e.get("finished") for e in log):
            continue
        entry = {"rep": k, "loadavg_before": os.getloadavg(),
                 "inductor_cache_existed": Path(inductor_cache_dir()).is_dir()
                 and any(Path(inductor_cache_dir()).iterdir()),
                 "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        start = time.perf_counter()
        run_sweep(cfg, folder, resume=folder.exists(), progress=False)
        entry.update(wall_s=time.perf_counter() - start, loadavg_after=os.getloadavg(),
                     finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        log = [e for e in log if e["rep"] != k] + [entry]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = log_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(log, indent=1))
        os.replace(tmp, log_path)
        print(name, entry, flush=True)


def load_reps(out: Path, name: str) -> pd.DataFrame:
    frames = []
    for csv in sorted((out / name).glob("rep*/sweep.csv")):
        frame = read_table(csv)
        frames.append(frame.assign(rep=int(csv.parent.name[3:])))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


#: per study: the comparison of :func:`mlpbench.analysis.modes.over_runs` it makes
ANALYSES = {"compile": "compile", "preset": "compile", "precision": "precision",
            "threads": "threads"}


def summarize_study(out: Path, name: str) -> pd.DataFrame | None:
    """The study's comparison within each rep, then median / min / max over reps (and the
    first rep's value: compile time with a cold inductor cache) -> ``modes_<name>.csv``."""
    frame = load_reps(out, name)
    if frame.empty:
        return None
    table = over_runs(frame, ANALYSES[name], by="rep")
    table.to_csv(out / f"modes_{name}.csv", index=False)
    return table


def roofline(out: Path) -> None:
    """From machine.json (1 thread): ridge point and memory-bound widths ->
    modes_roofline.csv; the compile study's eager rows on the roofline ->
    modes_roofline_points.csv."""
    from mlpbench.analysis.roofline import memory_bound_below_width, ridge, roofline_table

    path = out / "machine.json"
    if not path.exists():
        return
    rows = [r for r in json.loads(path.read_text())["measurements"] if r["threads"] == 1]
    peaks = {r["mode"]: r["gflops"] for r in rows if r["mode"] != "bandwidth"}
    bw = next(r["gbs"] for r in rows if r["mode"] == "bandwidth")
    mid = json.loads(path.read_text())["hardware"].get("machine_id", "unknown")
    table = [{"machine_id": mid, "dtype": dt, "peak_gflops": pk, "bandwidth_gbs": bw, "ridge_flop_per_byte":
              ridge(pk, bw), "phase": ph, "input_dim": 100, "depth": L, "batch": b,
              "memory_bound_below_width": memory_bound_below_width(ph, 100, L, b, pk, bw, dt)}
             for dt, pk in peaks.items() for ph in ("infer", "train_sgd", "train_adam")
             for L in (2, 10) for b in (1, 32, 256, 1024)]
    pd.DataFrame(table).to_csv(out / "modes_roofline.csv", index=False)
    frame = load_reps(out, "compile")
    if not frame.empty:
        eager = frame[(frame["mode"] == "eager")]
        points = roofline_table(eager, bw)
        cols = ["rep", "phase", "params", "width", "batch", "intensity", "gflops",
                "peak_gflops", "attainable_gflops", "bound", "roof_fraction"]
        points[[*cols, "dtype"]].assign(bandwidth_gbs=bw, machine_id=mid).to_csv(
            out / "modes_roofline_points.csv", index=False)
    print(pd.DataFrame(table).to_string(index=False))


#: columns shown in tables.md per study (all columns stay in the CSVs)
SHOW = {"compile": ["phase", "params", "reps", "base_median_s", "median_s", "speedup",
                    "speedup_min", "speedup_max", "compile_s_first", "compile_s"],
        "preset": ["framework", "phase", "params", "depth", "batch", "reps", "speedup",
                   "compile_s_first", "compile_s"],
        "precision": ["phase", "dtype", "params", "reps", "base_median_s", "median_s", "speedup",
                      "speedup_min", "speedup_max", "peak_fraction", "gflops"],
        "threads": ["phase", "params", "threads", "reps", "base_median_s", "median_s",
                    "speedup", "efficiency", "efficiency_min", "efficiency_max"]}


def summarize(out: Path) -> None:
    roofline(out)
    parts = ["# Generated by `scripts/bench_modes.py summarize` from the CSVs beside it\n"]
    for name in ANALYSES:
        table = summarize_study(out, name)
        if table is not None:
            print(f"== {name} -> {out / f'modes_{name}.csv'}")
            print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
            parts += [f"## {name} (modes_{name}.csv)\n",
                      table[SHOW[name]].to_markdown(index=False, floatfmt=".4g"), ""]
    if (out / "modes_roofline.csv").exists():
        parts += ["## roofline (modes_roofline.csv)\n",
                  pd.read_csv(out / "modes_roofline.csv").to_markdown(index=False, floatfmt=".4g")]
    (out / "tables.md").write_text("\n".join(parts) + "\n")
    for name in ANALYSES:
        log = out / name / "runs.json"
        if log.exists():
            for e in json.loads(log.read_text()):
                print(f"{name} rep{e['rep']}: wall {e.get('wall_s', float('nan')):.0f} s, "
                      f"load {e['loadavg_before'][0]:.1f} -> {e.get('loadavg_after', [0])[0]:.1f}")


def machine(out: Path) -> None:
    """Peak (fp32, bf16) and bandwidth at 1 and 2 threads, re-measured, into machine.json."""
    from dataclasses import asdict

    from mlpbench.devices import describe_hardware, threads
    from mlpbench.measure.bandwidth import get_bandwidth
    from mlpbench.measure.peak import get_peak

    rows = []
    for n in (1, 2):
        with threads(n):
            load = os.getloadavg()
            rows += [{**asdict(get_peak("cpu", m, refresh=True)), "loadavg": load}
                     for m in ("fp32", "bf16")]
            bw = get_bandwidth("cpu", refresh=True)
            rows.append({**asdict(bw), "mode": "bandwidth", "gbs": bw.gbs, "loadavg": load})
    out.mkdir(parents=True, exist_ok=True)
    doc = {"hardware": describe_hardware(), "measurements": rows}
    (out / "machine.json").write_text(json.dumps(doc, indent=1, default=str))
    print(json.dumps(rows, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study", choices=[*configs(), "summarize", "machine"])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    if args.study == "summarize":
        summarize(args.out)
    elif args.study == "machine":
        machine(args.out)
    else:
        run_study(args.study, args.reps, args.out)


if __name__ == "__main__":
    main()
