"""Host RSS of one optimizer at the 10^7 network (d=100, n_h=1000, L=10), each method in a
fresh process, against the memory model: writes rss.csv (a row per method, with the load
average beside it).

    .venv/bin/python scripts/curvature_rss.py OUT_DIR [--threads N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from mlpbench.results import write_table
from mlpbench.studies.curvature import METHODS, VARIANTS, optimizer_text

WORKER = """
import json, sys, torch
torch.set_num_threads(int(sys.argv[2]))
from mlpbench.spec import TARGET_SPEC
from mlpbench.studies.curvature import rss_point
print(json.dumps(rss_point(TARGET_SPEC, sys.argv[1])))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    rows = []
    for method in METHODS:
        variant = "update" if "update" in VARIANTS[method] else "step"
        text = optimizer_text(method, variant, False)
        load = Path("/proc/loadavg").read_text().split()[:3]
        done = subprocess.run([sys.executable, "-c", WORKER, text, str(args.threads)],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            rows.append({"optimizer": text, "status": "failed",
                         "reason": done.stderr.strip().splitlines()[-1][:200]})
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row.update(status="ok", method=method, variant=variant, threads=args.threads,
                   load1=float(load[0]), load5=float(load[1]), load15=float(load[2]))
        row["rss_over_model"] = row["rss_peak_bytes"] / row["model_less_params_bytes"]
        rows.append(row)
        print(f"{text}: RSS {row['rss_peak_bytes'] / 2**20:.0f} MiB, model "
              f"{row['model_less_params_bytes'] / 2**20:.0f} MiB "
              f"(x{row['rss_over_model']:.2f})", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out, "rss", pd.DataFrame(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
