"""Build time of the report from the committed reference results (issue target: <= 30 s on
2 cores): ``mlpbench report --reference`` run as a user runs it (a fresh process each time,
imports included), with drawing in parallel workers and with one worker, alternated.

Usage::

    python scripts/bench_report.py [--reps 3] [--out results/scripts/report_build.json]

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "results" / "scripts" / "report_build.json")
    args = p.parse_args()
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
