"""An outside check of the execution-mode study with another harness:
``torch.utils.benchmark.Timer.blocked_autorange`` on plain ``nn.Sequential`` models, none of
mlpbench's timing, phases or sweep code.

At one thread, d=100, L=2, B=256: eager vs ``torch.compile`` inference at P = 1,131 and
P = 1,103,001; d=100, n_h=1000, L=10, B=1024: fp32 vs bf16 inference at P = 9,111,001.
Settings alternate (A B A B) for ``--reps`` rounds; the ratio is taken within each round.

Usage::

    python scripts/check_modes_oracle.py [--reps 3] [--out results/runs/intel-xeon-2c/modes/oracle.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import torch
from torch import nn
from torch.utils.benchmark import Timer


def mlp(d: int, width: int, depth: int, dtype=torch.float32) -> nn.Module:
    layers, fan_in = [], d
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), nn.ReLU()]
        fan_in = width
    layers.append(nn.Linear(fan_in, 1))
    return nn.Sequential(*layers).to(dtype).eval()


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def median_s(fn, x, min_run_time: float) -> float:
    with torch.no_grad():
        for _ in range(3):
            fn(x)
        timer = Timer("fn(x)", globals={"fn": fn, "x": x}, num_threads=1)
        return timer.blocked_autorange(min_run_time=min_run_time).median


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", type=Path,
                   default=Path("results/runs/intel-xeon-2c/modes/oracle.json"))
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rows = []
    for width in (10, 1000):
        model = mlp(100, width, 2)
        compiled = torch.compile(model)
        x = torch.randn(256, 100)
        for rep in range(args.reps):
            load = os.getloadavg()[0]
            eager = median_s(model, x, 1.0)
            comp = median_s(compiled, x, 1.0)
            rows.append({"check": "compile", "phase": "infer", "params": params(model),
                         "batch": 256, "rep": rep, "base_s": eager, "other_s": comp,
                         "speedup": eager / comp, "load1": load})
            print(rows[-1], flush=True)
    model = mlp(100, 1000, 10)
    low = mlp(100, 1000, 10, torch.bfloat16)
    low.load_state_dict(model.state_dict())
    x = torch.randn(1024, 100)
    for rep in range(args.reps):
        load = os.getloadavg()[0]
        fp32 = median_s(model, x, 2.0)
        bf16 = median_s(low, x.bfloat16(), 2.0)
        rows.append({"check": "bf16", "phase": "infer", "params": params(model), "batch": 1024,
                     "rep": rep, "base_s": fp32, "other_s": bf16, "speedup": fp32 / bf16,
                     "load1": load})
        print(rows[-1], flush=True)
    summary = {}
    for r in rows:
        summary.setdefault(f"{r['check']} P={r['params']}", []).append(r["speedup"])
    doc = {"harness": "torch.utils.benchmark.Timer.blocked_autorange, 1 thread",
           "torch": torch.__version__, "rows": rows,
           "median_speedup": {k: statistics.median(v) for k, v in summary.items()},
           "min_speedup": {k: min(v) for k, v in summary.items()},
           "max_speedup": {k: max(v) for k, v in summary.items()}}
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc["median_speedup"], indent=1))


if __name__ == "__main__":
    main()
