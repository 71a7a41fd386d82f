"""``mlpbench minima``: GD vs SGD on problems with spurious minima (see
:mod:`mlpbench.studies.minima`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlpbench.cli import checks
from mlpbench.cli.common import float_list, int_list, positive_int, thread_count, word_list
from mlpbench.errors import UsageError
from mlpbench.spec import MAX_COUNT


def register(subparsers) -> argparse.ArgumentParser:
    """Register ``minima`` on the CLI's subparsers; returns its parser."""
    from mlpbench.studies.minima import MinimaConfig

    d = MinimaConfig()
    p = subparsers.add_parser("minima", help="GD vs SGD: how often each escapes spurious "
                              "minima (fp64-polished, classified end points)")
    p.add_argument("--inits", type=positive_int("--inits", MAX_COUNT), default=d.inits,
                   help="initialisation seeds per cell")
    p.add_argument("--problems", type=word_list("--problems"), default=d.problems,
                   help="comma-separated: local_minima, minima_deep, minima_wide")
    p.add_argument("--batch-sizes", type=int_list("--batch-sizes"), default=d.batch_sizes,
                   help="SGD minibatch sizes, at most the training set (GD is always "
                        "included)")
    p.add_argument("--lrs", type=float_list("--lrs"), default=d.lrs,
                   help="learning rates, finite, positive")
    p.add_argument("--steps", type=positive_int("--steps", MAX_COUNT), default=d.steps,
                   help="equal-steps budget")
    p.add_argument("--evals", type=positive_int("--evals", MAX_COUNT), default=d.evals,
                   help="equal-gradient-evaluations budget (full-batch equivalents)")
    p.add_argument("--eval-every", type=positive_int("--eval-every"), default=d.eval_every,
                   help="steps between loss evaluations (at most --steps and --evals)")
    p.add_argument("--out", "-o", default="runs/minima", help="results folder")
    p.add_argument("--resume", action="store_true", help="skip rows already in --out")
    p.add_argument("--threads", type=thread_count(), default=1,
                   help="torch threads (default 1)")
    p.set_defaults(func=cmd_minima)
    return p


def cmd_minima(args: argparse.Namespace) -> int:
    """Run the experiment described by ``args``; print where the tables went."""
    from mlpbench import jobs
    from mlpbench.devices import threads
    from mlpbench.studies.minima import RUNS, MinimaConfig

    if not str(args.out).strip():
        raise UsageError("--out must name a folder, got an empty string")
    cfg = MinimaConfig(problems=tuple(args.problems), inits=args.inits,
                       batch_sizes=tuple(args.batch_sizes), lrs=tuple(args.lrs),
                       steps=args.steps, evals=args.evals, eval_every=args.eval_every)
    checks.minima(cfg)
    out = Path(args.out)
    if (out / RUNS).exists() and not args.resume:
        raise UsageError(f"{out / RUNS} exists; pass --resume to finish it or pick --out")
    with threads(args.threads):
        print(jobs.minima(out, cfg, resume=args.resume,
                          log=lambda m: print(m, file=sys.stderr, flush=True)))
    return 0
