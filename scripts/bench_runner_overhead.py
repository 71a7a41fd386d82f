"""Wall-time overhead of the convergence runner over a bare PyTorch training loop.

Both do the same minibatch SGD steps on the same workload and model. The runner's time
is its whole ``run()`` call with evaluation every ``--eval-every`` steps (evaluation is
excluded from the runner's reported time but included here, on purpose: this measures what
the user waits for). Repeated alternately; medians and their ratio are printed.

Usage: python scripts/bench_runner_overhead.py [--steps 2000] [--repeats 7] [--eval-every 100]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mlpbench.devices import describe_hardware
from mlpbench.problems.runner import Budget, RunSettings, run
from mlpbench.problems.workloads import make_workload


def bare_loop(wl, steps: int, batch: int, lr: float, seed: int) -> float:
    torch.manual_seed(seed)
    model = wl.make_model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    perm, pos = torch.randperm(wl.n_train, generator=gen), 0
    start = time.perf_counter()
    for _ in range(steps):
        if pos + batch > wl.n_train:
            perm, pos = torch.randperm(wl.n_train, generator=gen), 0
        idx = perm[pos:pos + batch]
        pos += batch
        opt.zero_grad(set_to_none=True)
        wl.loss_fn(model(wl.x_train[idx]), wl.y_train[idx]).backward()
        opt.step()
    return time.perf_counter() - start


def runner(wl, steps: int, batch: int, lr: float, seed: int, eval_every: int) -> float:
    start = time.perf_counter()
    run(wl, f"sgd[lr={lr},batch={batch}]", seed=seed,
        budget=Budget(max_steps=steps, max_seconds=1e9),
        settings=RunSettings(eval_every=eval_every, patience=10**9))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--workload", default="teacher")
    args = ap.parse_args()
    # lr small enough that the target is never reached: both loops do exactly --steps steps
    wl, batch, lr = make_workload(args.workload), 32, 1e-4
    bare, ours = [], []
    runner(wl, 50, batch, lr, 0, args.eval_every)  # warm-up
    bare_loop(wl, 50, batch, lr, 0)
    for r in range(args.repeats):
        bare.append(bare_loop(wl, args.steps, batch, lr, r))
        ours.append(runner(wl, args.steps, batch, lr, r, args.eval_every))
    hw = describe_hardware()
    mb, mo = statistics.median(bare), statistics.median(ours)
    print(f"{hw['cpu_model']}, {hw['torch_threads']} threads, torch {torch.__version__}")
    print(f"{args.workload}, {args.steps} SGD steps (batch {batch}), eval every "
          f"{args.eval_every}, {args.repeats} repeats")
    print(f"bare loop median {mb:.3f} s; runner median {mo:.3f} s; ratio {mo / mb:.3f} "
          f"(overhead {mo / mb - 1:+.1%})")


if __name__ == "__main__":
    main()
