"""Command-line interface: each subcommand parses flags and calls one public function."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from mlpbench.errors import UsageError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _spec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-dim", "-d", type=int, default=100, help="input dimension d")
    p.add_argument("--width", "-w", type=int, default=1000, help="hidden width n_h")
    p.add_argument("--depth", "-L", type=int, default=10, help="number of hidden layers L")
    p.add_argument("--output-dim", type=int, default=1)
    p.add_argument("--activation", default="relu")
    p.add_argument("--no-bias", action="store_true")


def _spec_from(args: argparse.Namespace):
    from mlpbench.spec import MLPSpec

    return MLPSpec(args.input_dim, args.width, args.depth, args.output_dim, args.activation,
                   bias=not args.no_bias)


def cmd_params(args: argparse.Namespace) -> int:
    from mlpbench.spec import dtype_bytes
    from mlpbench.summary import render_summary, spec_summary

    dtype_bytes(args.dtype)
    summary = spec_summary(_spec_from(args), dtype=args.dtype, batch=args.batch,
                           lbfgs_history=args.lbfgs_history)
    _print_json(summary) if args.json else print(render_summary(summary))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from mlpbench.devices import describe_hardware

    info = describe_hardware()
    if args.json:
        _print_json(info)
    else:
        for key, value in info.items():
            print(f"{key:<18} {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mlpbench", description=__doc__)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("params", help="parameter count, FLOPs and memory model of an MLP")
    _spec_args(p)
    p.add_argument("--dtype", default="fp32")
    p.add_argument("--batch", type=int, default=1, help="batch size for activation memory")
    p.add_argument("--lbfgs-history", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("info", help="describe this machine's hardware and software")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("peak", help="measure (and cache) the dense matmul peak of a device")
    p.add_argument("--device", default="cpu")
    p.add_argument("--mode", action="append", help="fp32, bf16 (and tf32 on CUDA); repeatable")
    p.add_argument("--threads", type=int)
    p.add_argument("--refresh", action="store_true", help="re-measure even when cached")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_peak)

    p = sub.add_parser("sweep", help="time forward/backward/training over a grid of MLPs")
    _sweep_args(p)
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("converge", help="optimizers to a target loss: steps, time, evaluations")
    p.add_argument("--workload", "-W", action="append",
                   help="quadratic, teacher, mixture, local_minima (repeatable; default teacher)")
    p.add_argument("--optimizer", "-O", action="append",
                   help="e.g. 'sgd[lr=0.1,batch=32]' (repeatable; default: all first-order)")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (0..N-1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-steps", type=int, default=2000)
    p.add_argument("--max-seconds", type=float, default=30.0)
    p.add_argument("--max-grad-evals", type=float, default=float("inf"))
    p.add_argument("--eval-every", type=int, default=1)
    p.add_argument("--lr-grid", help="learning-rate sensitivity: LO:HI:N (log-spaced)")
    p.add_argument("--minima", action="store_true",
                   help="also run GD vs SGD on the local-minima problem")
    p.add_argument("--out", "-o", default="runs/converge")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_converge)

    p = sub.add_parser("newton-cost",
                       help="cost of Newton vs first-order steps as P grows; the Newton wall")
    p.add_argument("--device", default="cpu")
    p.add_argument("--widths", type=_ints, help="grid widths (d=10, L=2); default 8..2048")
    p.add_argument("--no-target", action="store_true",
                   help="leave out the 10^7-parameter network")
    p.add_argument("--method", choices=["all", "newton", "newton_cg", "first_order"],
                   default="all", help="which operations to measure")
    p.add_argument("--input-dim", "-d", type=int, help="measure this one network instead")
    p.add_argument("--width", "-w", type=int)
    p.add_argument("--depth", "-L", type=int)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--cg-iters", type=int, default=10)
    p.add_argument("--threads", type=int)
    p.add_argument("--max-op-seconds", type=float, default=60.0)
    p.add_argument("--per-cost", action="store_true",
                   help="also race Newton, Newton-CG and first-order methods to a target")
    p.add_argument("--out", "-o", default="runs/newton")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_newton_cost)

    p = sub.add_parser("regress", help="CI regression gate: benchmark two commits, compare")
    p.add_argument("base", help="base commit (its merge-base with HEAD is used)")
    p.add_argument("head", help="commit under test (e.g. HEAD)")
    p.add_argument("--factor", type=float, default=1.3,
                   help="wall tier: flag a paired median ratio above this (CI above 1)")
    p.add_argument("--insn-factor", type=float, default=1.02,
                   help="instruction-count tier: flag a ratio above this")
    p.add_argument("--rounds", type=int, default=12, help="wall tier: interleaved rounds")
    p.add_argument("--tiers", default="exact,insn,wall", help="comma-separated tiers")
    p.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                   help="wall tier clock: worker CPU time (robust to neighbours) or wall")
    p.add_argument("--wall-bench", action="append", help="wall-tier benchmark id (repeat)")
    p.add_argument("--insn-bench", action="append", help="insn-tier benchmark id (repeat)")
    p.add_argument("--no-merge-base", action="store_true", help="compare BASE itself")
    p.add_argument("--repo", default=".", help="git repository")
    p.add_argument("--out", help="folder for gate.json and summary.md")
    p.add_argument("--summary", help="append the Markdown table here ($GITHUB_STEP_SUMMARY)")
    p.set_defaults(func=cmd_regress)

    p = sub.add_parser("report", help="one self-contained HTML report of all results")
    p.add_argument("--asv-results", help="asv results folder (e.g. results/asv)")
    p.add_argument("--runs", nargs="+", default=[], help="mlpbench run folders")
    p.add_argument("--reference", action="store_true",
                   help="use the committed reference results (results/asv, results/runs/*)")
    p.add_argument("--out", "-o", default="report.html")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("run", help="the main job: a default sweep, then its HTML report")
    p.add_argument("--preset", choices=["quick", "default", "full"], default="default")
    p.add_argument("--out", "-o", default="runs/main", help="results folder")
    p.add_argument("--report", default="report.html")
    p.add_argument("--all", action="store_true",
                   help="also optimizer convergence and the Newton cost study")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_run)
    return parser


def _reference_dirs() -> tuple[str | None, list[str]]:
    from pathlib import Path

    root = Path("results")
    runs = sorted(str(p.parent) for p in root.glob("runs/**/*.csv"))
    asv = root / "asv"
    return (str(asv) if asv.is_dir() else None), sorted(set(runs))


def cmd_report(args: argparse.Namespace) -> int:
    from mlpbench.report import build_report

    asv_dir, runs = args.asv_results, list(args.runs)
    if args.reference:
        ref_asv, ref_runs = _reference_dirs()
        asv_dir = asv_dir or ref_asv
        runs += ref_runs
    path = build_report(asv_dir, runs, args.out)
    print(f"report: {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlpbench.report import build_report
    from mlpbench.sweep import preset, run_sweep, summary_text

    out = Path(args.out)
    frame = run_sweep(preset(args.preset), out / "sweep", resume=args.resume,
                      progress=not args.quiet)
    print(summary_text(frame))
    runs = [str(out / "sweep")]
    if args.all:
        from mlpbench.convergence import DEFAULT_OPTIMIZERS, converge_to_dir, lr_grid
        from mlpbench.newton_cost import CostConfig, cost_to_dir, report_text

        if not (args.resume and (out / "converge" / "converge.csv").exists()):
            converge_to_dir(out / "converge", workloads=["teacher", "mixture"],
                            optimizers=list(DEFAULT_OPTIMIZERS), seeds=list(range(5)),
                            lr_values=lr_grid(1e-3, 1.0, 7), minima=True,
                            progress=not args.quiet)
        if not (args.resume and (out / "newton" / "newton_cost.csv").exists()):
            print(report_text(cost_to_dir(out / "newton", CostConfig(), per_cost=True,
                                          progress=not args.quiet)))
        runs += [str(out / "converge"), str(out / "newton")]
    path = build_report(None, runs, args.report)
    print(f"report: {path}")
    return 0


def cmd_regress(args: argparse.Namespace) -> int:
    from mlpbench.regress import GateConfig, regress

    extra = {k: tuple(v) for k, v in (("wall", args.wall_bench), ("insn", args.insn_bench)) if v}
    cfg = GateConfig(factor=args.factor, insn_factor=args.insn_factor, rounds=args.rounds,
                     clock=args.clock,
                     tiers=tuple(t.strip() for t in args.tiers.split(",") if t.strip()),
                     merge_base=not args.no_merge_base, **extra)
    return regress(args.base, args.head, config=cfg, repo=args.repo, out=args.out,
                   summary=args.summary)


def cmd_newton_cost(args: argparse.Namespace) -> int:
    from mlpbench.newton_cost import (
        DEFAULT_WIDTHS,
        METHOD_OPERATIONS,
        OPERATIONS,
        CostConfig,
        cost_to_dir,
        report_text,
    )
    from mlpbench.spec import MLPSpec

    one = (args.input_dim, args.width, args.depth)
    networks = ()
    if any(v is not None for v in one):
        if any(v is None for v in one):
            raise UsageError("give all of --input-dim, --width and --depth for one network")
        networks = (MLPSpec(*one),)
    cfg = CostConfig(widths=args.widths or DEFAULT_WIDTHS, include_target=not args.no_target,
                     batch=args.batch, cg_iters=args.cg_iters, device=args.device,
                     threads=args.threads, max_op_seconds=args.max_op_seconds,
                     operations=METHOD_OPERATIONS.get(args.method, OPERATIONS),
                     networks=networks)
    from mlpbench.devices import device_skip_reason, resolve_device

    reason = device_skip_reason(resolve_device(args.device))
    if reason:
        raise UsageError(f"cannot run on {args.device}: {reason}")
    result = cost_to_dir(args.out, cfg, progress=not args.quiet, per_cost=args.per_cost,
                         refuse=args.method == "newton")
    print(report_text(result))
    if "per_cost" in result:
        print("\nconvergence per unit of cost (teacher-student, median over seeds):")
        print(result["per_cost"].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        loses = result["per_cost_verdict"]["newton_loses_from_params"]
        print("exact Newton loses on wall time from P = "
              + (f"{loses:,}" if loses else "never, in this grid"))
    print(f"results: {args.out}/")
    return 0


def cmd_converge(args: argparse.Namespace) -> int:
    from mlpbench.convergence import (
        DEFAULT_OPTIMIZERS,
        Budget,
        RunSettings,
        converge_to_dir,
        lr_grid,
    )
    from mlpbench.devices import device_skip_reason, resolve_device

    reason = device_skip_reason(resolve_device(args.device))
    if reason:
        raise UsageError(f"cannot run on {args.device}: {reason}")
    if args.seeds <= 0:
        raise UsageError(f"--seeds must be positive, got {args.seeds}")
    lrs = ()
    if args.lr_grid:
        try:
            lo, hi, num = args.lr_grid.split(":")
            lrs = lr_grid(float(lo), float(hi), int(num))
        except ValueError:
            raise UsageError(f"--lr-grid must be LO:HI:N, got {args.lr_grid!r}") from None
    tables = converge_to_dir(
        args.out, workloads=args.workload or ["teacher"],
        optimizers=args.optimizer or list(DEFAULT_OPTIMIZERS), seeds=list(range(args.seeds)),
        device=args.device,
        budget=Budget(args.max_steps, args.max_seconds, args.max_grad_evals),
        settings=RunSettings(eval_every=args.eval_every), lr_values=lrs, minima=args.minima,
        progress=not args.quiet)
    agg = tables["converge_agg"]
    cols = ["workload", "optimizer", "reached", "runs", "steps_median", "time_median",
            "evals_median", "final_loss_median"]
    print(agg[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if "lr_best" in tables:
        print("\nbest learning rate per optimizer:")
        print(tables["lr_best"].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if "minima" in tables:
        print("\nGD vs SGD on local_minima (fraction of seeds reaching the global minimum):")
        print(tables["minima"].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"results: {args.out}/")
    return 0


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None


def _words(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _sweep_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=["quick", "default", "full"],
                   help="a named grid; explicit flags override its fields")
    p.add_argument("--out", "-o", default="runs/sweep", help="output folder")
    p.add_argument("--devices", type=_words, help="e.g. cpu,cuda")
    p.add_argument("--dtypes", type=_words, help="fp32,bf16")
    p.add_argument("--frameworks", type=_words, help="torch,keras")
    p.add_argument("--input-dims", type=_ints, help="e.g. 10,100")
    p.add_argument("--widths", type=_ints, help="e.g. 64,256,1000")
    p.add_argument("--depths", type=_ints, help="e.g. 2,10")
    p.add_argument("--batches", type=_ints, help="e.g. 32,1024")
    p.add_argument("--phases", type=_words,
                   help="infer,forward,backward,train_sgd,train_adam")
    p.add_argument("--activation")
    p.add_argument("--threads", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--budget", type=float, help="seconds of timed samples per phase")
    p.add_argument("--no-isolate", action="store_true",
                   help="measure in this process (faster; host peak RSS then not per point)")
    p.add_argument("--resume", action="store_true", help="skip points already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _sweep_config(args: argparse.Namespace):
    from mlpbench.sweep import PRESETS, config_from_args
    from mlpbench.timing import TimerConfig

    timer = None
    if args.budget is not None:
        if args.budget <= 0:
            raise UsageError(f"--budget must be positive, got {args.budget}")
        base = PRESETS.get(args.preset or "", {}).get("timer", TimerConfig())
        timer = TimerConfig(**{**base.__dict__, "budget_s": args.budget})
    return config_from_args(
        args.preset, devices=args.devices, dtypes=args.dtypes, frameworks=args.frameworks,
        input_dims=args.input_dims, widths=args.widths, depths=args.depths,
        batches=args.batches, phases=args.phases, activation=args.activation,
        threads=args.threads, seed=args.seed, timer=timer,
        isolate=False if args.no_isolate else None)


def cmd_sweep(args: argparse.Namespace) -> int:
    from mlpbench.sweep import run_sweep, summary_text

    frame = run_sweep(_sweep_config(args), args.out, resume=args.resume,
                      progress=not args.quiet)
    print(summary_text(frame))
    print(f"results: {args.out}/sweep.csv, {args.out}/sweep.json")
    return 0


def cmd_peak(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from mlpbench.devices import device_skip_reason, resolve_device, set_threads
    from mlpbench.peak import get_peak

    device = resolve_device(args.device)
    reason = device_skip_reason(device)
    if reason:
        raise UsageError(f"cannot measure {args.device}: {reason}")
    set_threads(args.threads)
    modes = args.mode or ["fp32"]
    results = [asdict(get_peak(args.device, m, refresh=args.refresh)) for m in modes]
    if args.json:
        _print_json(results)
    for r in results if not args.json else []:
        print(f"{r['device']} {r['mode']}: {r['gflops']:.1f} GFLOP/s "
              f"(n={r['size']}, {r['threads']} threads, torch {r['torch']})")
    return 0


def _version() -> str:
    from mlpbench import __version__

    return f"mlpbench {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit code (2 for bad input)."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"mlpbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mlpbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
