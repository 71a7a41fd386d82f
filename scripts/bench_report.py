"""Build time of the report from the committed reference results (issue target: <= 30 s on
2 cores): ``mlpbench report --reference`` run as a user runs it (a fresh process each time,
imports included), with drawing in parallel workers and with one worker, alternated.

Usage::

    python scripts/bench_report.py [--reps 3] [--out results/scripts/report_build.json]
    python scripts/bench_report.py --machines 20,50 [--out results/scripts/report_fleet.json]

``--machines N,...`` builds a report of N synthetic machines instead: the committed AMD sweep
copied under N machine identities (own id, CPU model and host), its times scaled by factors
spaced geometrically from 0.3× to 3×; it records the build time, page size and peak memory.

Writes every run's wall time, the worker count and ``os.getloadavg()`` before it, and the
median per setting.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def one_build(workers: str, out: Path) -> float:
    env = {**os.environ, "MLPBENCH_REPORT_WORKERS": workers}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mlpbench", "report", "--reference", "-o", str(out)],
                   check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


SWEEP = ROOT / "results" / "runs" / "amd-epyc-2c" / "sweep"


def fleet(n: int, root: Path) -> list[str]:
    """``n`` copies of the reference sweep as ``n`` machines; returns their folders."""
    import pandas as pd

    frame = pd.read_csv(SWEEP / "sweep.csv")
    meta = json.loads((SWEEP / "sweep.json").read_text())
    dirs = []
    for i in range(n):
        scale = 0.3 * 10 ** (i / max(n - 1, 1))  # 0.3x ... 3x
        mid = f"synthetic-{i:02d}"
        d = root / mid / "sweep"
        d.mkdir(parents=True)
        f = frame.assign(machine_id=mid, median_s=frame["median_s"] * scale)
        for col in ("gflops", "samples_per_s"):
            if col in f:
                f[col] = frame[col] / scale
        f.to_csv(d / "sweep.csv", index=False)
        hw = {**meta.get("hardware", {}), "machine_id": mid, "hostname": f"host-{i:02d}",
              "cpu_model": f"Synthetic CPU {i:02d} (x{scale:.2f} time)"}
        (d / "sweep.json").write_text(json.dumps({**meta, "hardware": hw}))
        dirs.append(str(d))
    return dirs


def fleet_build(dirs: list[str], out: Path) -> dict:
    """One report of the given folders in a fresh process: wall time, size, peak RSS."""
    import resource

    load = os.getloadavg()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mlpbench", "report", "--runs", *dirs, "-o",
                    str(out)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {"seconds": seconds, "loadavg_before": load, "loadavg_after": os.getloadavg(),
            "html_bytes": out.stat().st_size, "max_child_rss_bytes": rss}


def main_fleet(sizes: list[int], reps: int, out: Path) -> None:
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            dirs = fleet(n, Path(tmp) / f"fleet{n}")
            for rep in range(reps):
                r = {"machines": n, "rep": rep, **fleet_build(dirs, Path(tmp) / f"{n}.html")}
                runs.append(r)
                print(f"{n} machines rep {rep}: {r['seconds']:.1f} s, "
                      f"{r['html_bytes'] / 1e6:.1f} MB (load {r['loadavg_before'][0]:.2f})",
                      flush=True)
    doc = {"command": "python -m mlpbench report --runs <N synthetic sweeps>",
           "cpu": cpu_model(), "usable_cores": len(os.sched_getaffinity(0)), "runs": runs,
           "median_s": {str(n): statistics.median(r["seconds"] for r in runs
                                                  if r["machines"] == n) for n in sizes}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc["median_s"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "results" / "scripts" / "report_build.json")
    p.add_argument("--machines", default="", help="comma-separated fleet sizes, e.g. 20,50")
    args = p.parse_args()
    if args.machines:
        sizes = [int(v) for v in args.machines.split(",") if v.strip()]
        out = args.out if args.out.name != "report_build.json" else \
            args.out.with_name("report_fleet.json")
        main_fleet(sizes, args.reps, out)
        return
    settings = {"parallel": "", "one worker": "1"}  # "" = one worker per usable core
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for name, workers in settings.items():  # alternated: A B A B ...
                load = os.getloadavg()
                seconds = one_build(workers, Path(tmp) / "ref.html")
                runs.append({"rep": rep, "setting": name, "seconds": seconds, "loadavg": load})
                print(f"{name:10s} rep {rep}: {seconds:.2f} s (load {load[0]:.2f})", flush=True)
    medians = {name: statistics.median(r["seconds"] for r in runs if r["setting"] == name)
               for name in settings}
    doc = {"command": "python -m mlpbench report --reference", "cpu": cpu_model(),
           "usable_cores": len(os.sched_getaffinity(0)),
           "runs": runs, "median_s": medians}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(medians))


if __name__ == "__main__":
    main()
