"""``mlpbench minima``: GD vs SGD on problems with spurious minima (see
:mod:`mlpbench.studies.minima`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlpbench.errors import UsageError


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"expected comma-separated integers, got {text!r}") from None


def register(subparsers) -> argparse.ArgumentParser:
    """Register ``minima`` on the CLI's subparsers; returns its parser."""
    from mlpbench.studies.minima import MinimaConfig

    d = MinimaConfig()
    p = subparsers.add_parser("minima", help="GD vs SGD: how often each escapes spurious "
                              "minima (fp64-polished, classified end points)")
    p.add_argument("--inits", type=int, default=d.inits, help="initialisation seeds per cell")
    p.add_argument("--problems", default=",".join(d.problems),
                   help="comma-separated: local_minima, minima_deep, minima_wide")
    p.add_argument("--batch-sizes", default=",".join(map(str, d.batch_sizes)),
                   help="SGD minibatch sizes (GD is always included)")
    p.add_argument("--lrs", default=",".join(f"{v:g}" for v in d.lrs))
    p.add_argument("--steps", type=int, default=d.steps, help="equal-steps budget")
    p.add_argument("--evals", type=int, default=d.evals,
                   help="equal-gradient-evaluations budget (full-batch equivalents)")
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--out", "-o", default="runs/minima", help="results folder")
    p.add_argument("--resume", action="store_true", help="skip rows already in --out")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.set_defaults(func=cmd_minima)
    return p


def cmd_minima(args: argparse.Namespace) -> int:
    """Run the experiment described by ``args``; print where the tables went."""
    from mlpbench import jobs
    from mlpbench.devices import threads
    from mlpbench.studies.minima import RUNS, MinimaConfig, check_sizes

    check_sizes([args.inits, args.steps, args.evals, args.eval_every, args.threads])
    cfg = MinimaConfig(problems=tuple(args.problems.split(",")), inits=args.inits,
                       batch_sizes=_ints(args.batch_sizes), lrs=_floats(args.lrs),
                       steps=args.steps, evals=args.evals, eval_every=args.eval_every)
    out = Path(args.out)
    if (out / RUNS).exists() and not args.resume:
        raise UsageError(f"{out / RUNS} exists; pass --resume to finish it or pick --out")
    with threads(args.threads):
        print(jobs.minima(out, cfg, resume=args.resume,
                          log=lambda m: print(m, file=sys.stderr, flush=True)))
    return 0
