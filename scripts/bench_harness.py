"""Targets of the hardware sweep, measured in one run on this machine.

1. Train step at d=100, n_h=1000, L=10, B=1024, fp32, CPU: fraction of the fp32 matmul peak
   measured in the same run.
2. Harness fidelity: on several grid points, the sweep engine's median against
   ``torch.utils.benchmark.Timer.blocked_autorange`` at the same thread count.

Usage: python scripts/bench_harness.py [--threads N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.utils.benchmark as tb

from mlpbench.devices import describe_hardware, threads
from mlpbench.measure.peak import measure_peak
from mlpbench.measure.timing import TimerConfig, measure
from mlpbench.problems.phases import make_bench, phase_callable, phase_flops
from mlpbench.spec import MLPSpec

FIDELITY_POINTS = [  # (d, width, depth, batch, phase)
    (100, 128, 2, 256, "infer"),
    (100, 512, 2, 256, "forward"),
    (100, 512, 4, 256, "train_sgd"),
    (100, 1024, 2, 256, "train_adam"),
    (100, 1000, 4, 64, "infer"),
    (10, 256, 10, 1024, "train_sgd"),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int)
    ap.add_argument("--json")
    args = ap.parse_args()
    with threads(args.threads) as n:
        run(args, n)


def run(args: argparse.Namespace, threads: int) -> None:
    cpu = torch.device("cpu")
    peak = measure_peak("cpu", "fp32", config=TimerConfig(budget_s=2.0))
    out = {"hardware": describe_hardware(), "threads": threads, "peak_gflops": peak.gflops,
           "peak_size": peak.size}
    print(f"{out['hardware']['cpu_model']}, {threads} threads, torch {torch.__version__}")
    print(f"fp32 matmul peak: {peak.gflops:.1f} GFLOP/s (n={peak.size})")

    spec = MLPSpec(100, 1000, 10)
    bench = make_bench(spec, batch=1024, device=cpu)
    out["train_step"] = {}
    for phase in ("train_sgd", "train_adam", "forward", "infer"):
        fn, setup = phase_callable(bench, phase)
        m = measure(fn, setup=setup, config=TimerConfig(budget_s=3.0, min_samples=10))
        gflops = phase_flops(spec, phase) * 1024 / m.median / 1e9
        out["train_step"][phase] = {"median_s": m.median, "iqr_s": m.iqr, "n": m.n,
                                    "gflops": gflops, "peak_fraction": gflops / peak.gflops}
        print(f"d=100 w=1000 L=10 B=1024 {phase:<10}: median {m.median * 1e3:.1f} ms "
              f"(IQR {m.iqr * 1e3:.1f} ms, n={m.n}) {gflops:.1f} GFLOP/s = "
              f"{gflops / peak.gflops:.1%} of peak")

    out["fidelity"] = []
    for d, w, depth, batch, phase in FIDELITY_POINTS:
        bench = make_bench(MLPSpec(d, w, depth), batch=batch, device=cpu)
        fn, setup = phase_callable(bench, phase)
        ours = measure(fn, config=TimerConfig(budget_s=2.0, min_samples=10)).median
        ref = tb.Timer("fn()", globals={"fn": fn}, num_threads=threads).blocked_autorange(
            min_run_time=2.0).median
        rel = ours / ref - 1
        out["fidelity"].append({"point": [d, w, depth, batch, phase], "ours_s": ours,
                                "timer_s": ref, "rel_diff": rel})
        print(f"fidelity d={d} w={w} L={depth} B={batch} {phase:<10}: ours {ours * 1e6:9.1f} us"
              f"  Timer {ref * 1e6:9.1f} us  diff {rel:+.2%}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2, default=str)


if __name__ == "__main__":
    main()
