"""Subcommands that describe, report and gate: params, info, report, run, regress."""

from __future__ import annotations

import argparse
import sys

from mlpbench import jobs
from mlpbench.cli.common import add_retries, add_threads, positive_int, print_json, threads_of

#: exit code of ``report`` and ``run`` when the page was written but a section or figure
#: could not be drawn (2 is bad input, 1 an internal error)
EXIT_PARTIAL = 3


def register(sub) -> None:
    p = sub.add_parser("params", help="parameter count, FLOPs and memory model of an MLP")
    p.add_argument("--input-dim", "-d", type=positive_int("--input-dim"), default=100,
                   help="input dimension d")
    p.add_argument("--width", "-w", type=positive_int("--width"), default=1000,
                   help="hidden width n_h")
    p.add_argument("--depth", "-L", type=positive_int("--depth"), default=10,
                   help="number of hidden layers L")
    p.add_argument("--output-dim", type=positive_int("--output-dim"), default=1)
    p.add_argument("--activation", default="relu")
    p.add_argument("--no-bias", action="store_true")
    p.add_argument("--dtype", default="fp32")
    p.add_argument("--batch", type=positive_int("--batch"), default=1,
                   help="batch size for activation memory")
    p.add_argument("--lbfgs-history", type=positive_int("--lbfgs-history"), default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("info", help="describe this machine's hardware and software")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("report", help="one self-contained HTML report of all results")
    p.add_argument("--asv-results", help="asv results folder (e.g. results/asv)")
    p.add_argument("--runs", nargs="+", action="extend", default=[],
                   help="mlpbench run folders, or `mlpbench regress --out` folders "
                        "(repeatable)")
    p.add_argument("--reference", action="store_true",
                   help="add the committed reference results (results/ of the source checkout, "
                        "or $MLPBENCH_RESULTS)")
    p.add_argument("--out", "-o", default="report.html")
    p.add_argument("--allow-partial", action="store_true",
                   help=f"exit 0 even when a section or figure could not be drawn (default: "
                        f"exit {EXIT_PARTIAL}; the page is written either way)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("run", help="the main job: a default sweep, then its HTML report")
    p.add_argument("--preset", choices=["quick", "default", "full"], default="default")
    p.add_argument("--out", "-o", default="runs/main", help="results folder")
    p.add_argument("--report", default="report.html")
    p.add_argument("--all", action="store_true",
                   help="also optimizer convergence and the Newton cost study")
    add_threads(p)
    add_retries(p)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--allow-partial", action="store_true",
                   help=f"exit 0 even when the report is partial (default: exit {EXIT_PARTIAL})")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("regress", help="CI regression gate: benchmark two commits, compare")
    p.add_argument("base", help="base commit (its merge-base with HEAD is used)")
    p.add_argument("head", help="commit under test (e.g. HEAD)")
    p.add_argument("--factor", type=float, default=1.3,
                   help="wall tier: flag a paired median ratio above this (CI above 1); "
                        "at most 10")
    p.add_argument("--insn-factor", type=float, default=1.02,
                   help="instruction-count tier: flag a ratio above this; at most 10")
    p.add_argument("--rounds", type=int, default=12, help="wall tier: interleaved rounds")
    p.add_argument("--tiers", default="exact,insn,wall", help="comma-separated tiers")
    p.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                   help="wall tier clock: worker CPU time (robust to neighbours) or wall")
    p.add_argument("--wall-bench", action="append", help="wall-tier benchmark id (repeat)")
    p.add_argument("--insn-bench", action="append", help="insn-tier benchmark id (repeat)")
    p.add_argument("--exact-bench", action="append", help="exact-tier benchmark id (repeat)")
    p.add_argument("--time-floor", type=float, default=60.0,
                   help="HEAD's time limit per request is max(this, 10 x BASE's time), seconds")
    p.add_argument("--no-merge-base", action="store_true", help="compare BASE itself")
    p.add_argument("--repo", default=".", help="git repository")
    p.add_argument("--out", help="folder for gate.json and summary.md")
    p.add_argument("--summary", help="append the Markdown table here ($GITHUB_STEP_SUMMARY)")
    p.set_defaults(func=cmd_regress)


def cmd_params(args: argparse.Namespace) -> int:
    from mlpbench.analysis.params import render_summary
    from mlpbench.spec import MLPSpec, dtype_bytes

    dtype_bytes(args.dtype)
    spec = MLPSpec(args.input_dim, args.width, args.depth, args.output_dim, args.activation,
                   bias=not args.no_bias)
    summary = jobs.params_summary(spec, dtype=args.dtype, batch=args.batch,
                                  lbfgs_history=args.lbfgs_history)
    print_json(summary) if args.json else print(render_summary(summary))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from mlpbench.devices import describe_hardware

    info = describe_hardware()
    if args.json:
        print_json(info)
    else:
        for key, value in info.items():
            print(f"{key:<18} {value}")
    return 0


def _partial(failures: list[str], allow: bool) -> int:
    """The exit code of a report: 0, or ``EXIT_PARTIAL`` (one stderr line) when parts of the
    page could not be drawn and ``--allow-partial`` was not given."""
    if not failures:
        return 0
    line = (f"{len(failures)} part(s) of the report could not be drawn (shown on the page): "
            + "; ".join(failures))[:1000]
    if allow:
        print(f"mlpbench: warning: {line}", file=sys.stderr)
        return 0
    print(f"mlpbench: error: {line} (--allow-partial accepts a partial page)", file=sys.stderr)
    return EXIT_PARTIAL


def cmd_report(args: argparse.Namespace) -> int:
    failures: list[str] = []
    print(jobs.report(args.asv_results, args.runs, args.out, reference=args.reference,
                      failures=failures))
    return _partial(failures, args.allow_partial)


def cmd_run(args: argparse.Namespace) -> int:
    failures: list[str] = []
    print(jobs.main_job(args.preset, args.out, args.report, everything=args.all,
                        resume=args.resume, progress=not args.quiet,
                        n_threads=threads_of(args), failures=failures,
                        retries=args.retries))
    return _partial(failures, args.allow_partial)


def cmd_regress(args: argparse.Namespace) -> int:
    """The gate's own exit codes only: SIGTERM/SIGINT say no verdict was reached."""
    from mlpbench.cli import Terminated
    from mlpbench.gate.config import GateConfig
    from mlpbench.gate.core import regress

    extra = {k: tuple(v) for k, v in (("wall", args.wall_bench), ("insn", args.insn_bench),
                                      ("exact", args.exact_bench)) if v}
    cfg = GateConfig(factor=args.factor, insn_factor=args.insn_factor, rounds=args.rounds,
                     clock=args.clock, time_floor=args.time_floor,
                     tiers=tuple(t.strip() for t in args.tiers.split(",") if t.strip()),
                     merge_base=not args.no_merge_base, **extra)
    try:
        return regress(args.base, args.head, config=cfg, repo=args.repo, out=args.out,
                       summary=args.summary)
    except (KeyboardInterrupt, Terminated) as exc:
        code = 130 if isinstance(exc, KeyboardInterrupt) else 143
        print(f"mlpbench regress: {'interrupted' if code == 130 else 'terminated'}; no "
              "verdict (workers and valgrind stopped; rerun the gate)", file=sys.stderr)
        return code
