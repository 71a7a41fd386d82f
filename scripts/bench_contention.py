"""Does the contention evidence tell a busy machine from a quiet one? A benchmark, not a test.

Runs ``mlpbench sweep --preset quick`` (CPU) under three conditions — quiet, beside one
busy-loop process, beside two — interleaved (the order rotates every repeat), ``--repeats``
times each, with ``--retries 0`` so that every flag is seen as measured. Then, per condition:

* the share of rows flagged (``contention`` not empty);
* for rows **not** flagged: the median and worst |peak_fraction − quiet median| relative to
  the quiet median of the same (point, phase), and how many claim peak_fraction > 1;
* among rows whose median time is inflated by more than 20% over the quiet median: the share
  flagged;
* ``quiet_unpaired`` (``--no-yardstick``) beside ``quiet``: the wall time the pairing costs.

With ``--overhead N`` it also times the default preset with and without the interleaved
yardstick (``--no-yardstick``), in ABBA order, to state what pairing costs
(``--repeats 0 --overhead N``: only that, into ``overhead.csv`` and ``overhead.json``).

Writes ``<out>/runs/<condition>/rep<k>/`` (the sweeps), ``contention_rows.csv``,
``contention_summary.csv``, ``overhead.csv`` and ``contention.json`` (machine, loads, times).

    python scripts/bench_contention.py --out results/runs/amd-epyc-2c/contention --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
#: condition -> (busy loops beside the sweep, extra sweep flags); quiet_unpaired measures
#: what the interleaved yardstick costs (wall time against quiet)
CONDITIONS = {"quiet": (0, []), "hog1": (1, []), "hog2": (2, []),
              "quiet_unpaired": (0, ["--no-yardstick"])}
KEYS = ["input_dim", "width", "depth", "batch", "phase", "threads"]
HOG = "while True: pass"


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def sweep(out: Path, hogs: int, extra: list[str], preset: str = "quick") -> dict:
    """One sweep beside ``hogs`` busy loops; returns its wall time and loads."""
    procs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
    try:
        time.sleep(3 if hogs else 0)  # let the busy loops take their cores
        before, start = _load(), time.perf_counter()
        # the quick preset on the CPU only; the default preset exactly as `mlpbench run` runs
        # it (its CUDA points are recorded as skipped where there is no GPU)
        devices = ["--devices", "cpu"] if preset == "quick" else []
        proc = subprocess.run([sys.executable, "-m", "mlpbench.cli", "sweep", "--preset", preset,
                               *devices, "--retries", "0", "--quiet", "--out",
                               str(out), *extra], cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - start
    finally:
        for p in procs:
            p.kill()
            p.wait()
    if proc.returncode != 0:
        raise SystemExit(f"sweep failed ({proc.returncode}): {proc.stderr[-500:]}")
    return {"out": str(out), "hogs": hogs, "wall_s": round(wall, 1), "load_before": before,
            "load_after": _load()}


def verdict(row: pd.Series) -> str:
    """The ``contention`` verdict of a stored row under the thresholds in force now (the
    evidence columns are stored, so a threshold change is re-applied, not re-measured)."""
    from mlpbench.measure.contention import Evidence, reasons

    ev = Evidence(**{k: float(row[k]) for k in ("load1", "cpu_share", "main_cpu_share",
                                                "ctx_switches_per_s", "steal_fraction",
                                                "wall_s") if k in row})
    lo = row.get("peak_fraction_lo")
    lo = row["peak_fraction"] if lo is None or pd.isna(lo) else lo  # unpaired: the estimate
    return reasons(ev, int(row["threads"]), peak_spread=float(row.get("peak_spread", "nan")),
                   peak_fraction_lo=float(lo))


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    ok = rows[rows["status"] == "ok"].copy()
    ok["verdict"] = ok.apply(verdict, axis=1)  # == contention unless thresholds changed
    ok["flagged"] = ok["verdict"] != ""
    quiet = ok[ok["condition"] == "quiet"].groupby(KEYS)[["median_s", "peak_fraction"]].median()
    ok = ok.join(quiet.add_suffix("_quiet"), on=KEYS)
    ok["inflation"] = ok["median_s"] / ok["median_s_quiet"]
    ok["pf_dev"] = (ok["peak_fraction"] - ok["peak_fraction_quiet"]).abs() \
        / ok["peak_fraction_quiet"]
    out = []
    for cond, g in ok.groupby("condition", sort=False):
        clean, inflated = g[~g["flagged"]], g[g["inflation"] > 1.2]
        out.append({
            "condition": cond, "rows": len(g), "flagged": int(g["flagged"].sum()),
            "flagged_share": g["flagged"].mean(),
            "unflagged_pf_dev_median": clean["pf_dev"].median(),
            "unflagged_pf_dev_worst": clean["pf_dev"].max(),
            "unflagged_pf_over_1": int((clean["peak_fraction"] > 1).sum()),
            "inflated_rows": len(inflated),
            "inflated_flagged_share": inflated["flagged"].mean() if len(inflated) else None,
            "time_inflation_median": g["inflation"].median(),
            "time_inflation_worst": g["inflation"].max()})
    return pd.DataFrame(out), ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--summarise", action="store_true",
                    help="only re-derive the tables from the sweeps already in --out")
    ap.add_argument("--overhead", type=int, default=0, metavar="N",
                    help="also time the default preset N times with and without the yardstick")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from mlpbench.devices import describe_hardware
    from mlpbench.results import read_table

    runs, names = [], list(CONDITIONS)
    if args.overhead and not args.repeats:  # only the default preset's overhead
        args.summarise = (args.out / "contention.json").exists()
    if args.summarise:
        runs = json.loads((args.out / "contention.json").read_text())["runs"]
    for rep in range(0 if args.summarise else args.repeats):
        k = rep % len(names)
        order = names[k:] + names[:k]  # interleaved: the order rotates
        for cond in order:
            out = args.out / "runs" / cond / f"rep{rep}"
            info = sweep(out, *CONDITIONS[cond])
            runs.append({"condition": cond, "rep": rep, **info})
            print(json.dumps(runs[-1]), flush=True)
    summary = pd.DataFrame()
    if runs:
        rows = pd.concat([read_table(Path(r["out"]) / "sweep.csv").assign(
            condition=r["condition"], rep=r["rep"]) for r in runs], ignore_index=True)
        summary, detail = summarise(rows)
        detail.to_csv(args.out / "contention_rows.csv", index=False)
        summary.to_csv(args.out / "contention_summary.csv", index=False)
    overhead = []
    if args.overhead:
        modes = [("paired", []), ("unpaired", ["--no-yardstick"])]
        for rep in range(args.overhead):
            for mode, extra in modes if rep % 2 == 0 else modes[::-1]:  # ABBA
                out = args.out / "overhead" / f"{mode}{rep}"
                info = sweep(out, 0, extra, preset="default")
                overhead.append({"mode": mode, "rep": rep, **info})
                print(json.dumps(overhead[-1]), flush=True)
                pd.DataFrame(overhead).to_csv(args.out / "overhead.csv", index=False)
        (args.out / "overhead.json").write_text(json.dumps(
            {"hardware": describe_hardware(), "overhead": overhead}, indent=2))
    if runs and not args.summarise:
        (args.out / "contention.json").write_text(json.dumps(
            {"hardware": describe_hardware(), "runs": runs, "overhead": overhead}, indent=2))
    print(summary.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
