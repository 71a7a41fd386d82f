"""Subcommands that measure: peak, sweep, converge, newton-cost."""

from __future__ import annotations

import argparse

from mlpbench import jobs, validate
from mlpbench.cli import checks
from mlpbench.cli.common import (
    add_retries,
    add_threads,
    ints,
    non_negative_int,
    positive_float,
    positive_int,
    print_json,
    thread_list,
    threads_of,
    words,
)
from mlpbench.errors import UsageError

#: points of a learning-rate grid (each one a full set of runs)
MAX_LR_POINTS = 1000


def register(sub) -> None:
    p = sub.add_parser("peak", help="measure (and cache) the dense matmul peak of a device")
    p.add_argument("--device", default="cpu")
    p.add_argument("--mode", action="append", help="fp32, bf16 (and tf32 on CUDA); repeatable")
    add_threads(p)
    p.add_argument("--refresh", action="store_true", help="re-measure even when cached")
    p.add_argument("--bandwidth", action="store_true",
                   help="also measure (and cache) the memory bandwidth (STREAM copy/triad)")
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
    p.add_argument("--seeds", type=positive_int("--seeds"), default=5,
                   help="number of seeds (0..N-1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-steps", type=positive_int("--max-steps"), default=2000)
    p.add_argument("--max-seconds", type=positive_float("--max-seconds"), default=30.0)
    p.add_argument("--max-grad-evals", type=positive_float("--max-grad-evals", allow_inf=True),
                   default=float("inf"))
    p.add_argument("--eval-every", type=positive_int("--eval-every"), default=1,
                   help="steps between full-batch loss evaluations (at most --max-steps)")
    p.add_argument("--lr-grid", help="learning-rate sensitivity: LO:HI:N (log-spaced)")
    _out_args(p, "runs/converge")
    p.set_defaults(func=cmd_converge)

    p = sub.add_parser("newton-cost",
                       help="cost of Newton vs first-order steps as P grows; the Newton wall")
    p.add_argument("--device", default="cpu")
    p.add_argument("--widths", type=ints, help="grid widths (d=10, L=2); default 8..2048")
    p.add_argument("--no-target", action="store_true",
                   help="leave out the 10^7-parameter network")
    p.add_argument("--method", choices=["all", "newton", "newton_cg", "first_order"],
                   default="all", help="which operations to measure")
    p.add_argument("--input-dim", "-d", type=positive_int("--input-dim"),
                   help="measure this one network instead")
    p.add_argument("--width", "-w", type=positive_int("--width"))
    p.add_argument("--depth", "-L", type=positive_int("--depth"))
    p.add_argument("--batch", type=positive_int("--batch"), default=64)
    p.add_argument("--cg-iters", type=positive_int("--cg-iters"), default=10,
                   help="CG iterations of a Newton-CG step (at most the largest P)")
    p.add_argument("--max-op-seconds", type=positive_float("--max-op-seconds"), default=60.0)
    p.add_argument("--per-cost", action="store_true",
                   help="also race Newton, Newton-CG and first-order methods to a target")
    _out_args(p, "runs/newton")
    p.set_defaults(func=cmd_newton_cost)


def _out_args(p: argparse.ArgumentParser, default: str, threads: bool = True) -> None:
    if threads:
        add_threads(p)
    p.add_argument("--out", "-o", default=default, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue the results in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _sweep_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=["quick", "default", "full"],
                   help="a named grid; explicit flags override its fields")
    p.add_argument("--devices", type=words, help="e.g. cpu,cuda")
    p.add_argument("--dtypes", type=words, help="fp32,bf16,bf16-autocast (tf32: CUDA)")
    p.add_argument("--modes", type=words,
                   help="eager,compile,max-autotune (cudagraphs: CUDA); default eager")
    p.add_argument("--threads", type=thread_list,
                   help="torch intra-op thread counts, an axis, e.g. 1,2 "
                        "(default: $MLPBENCH_THREADS, else torch's)")
    p.add_argument("--frameworks", type=words, help="torch,keras")
    p.add_argument("--input-dims", type=ints, help="e.g. 10,100")
    p.add_argument("--widths", type=ints, help="e.g. 64,256,1000")
    p.add_argument("--depths", type=ints, help="e.g. 2,10")
    p.add_argument("--batches", type=ints, help="e.g. 32,1024")
    p.add_argument("--phases", type=words, help="infer,forward,backward,train_sgd,train_adam")
    p.add_argument("--activation")
    p.add_argument("--seed", type=non_negative_int("--seed"))
    p.add_argument("--budget", type=positive_float("--budget"),
                   help="seconds of timed samples per phase")
    add_retries(p)
    p.add_argument("--no-yardstick", action="store_true",
                   help="do not time the matmul yardstick beside each phase (the fraction of "
                        "peak then divides by the cached reference peak)")
    p.add_argument("--no-isolate", action="store_true",
                   help="measure in this process (faster; host peak RSS then not per point)")
    _out_args(p, "runs/sweep", threads=False)


def _device_ok(name: str) -> None:
    from mlpbench.devices import device_skip_reason, resolve_device

    reason = device_skip_reason(resolve_device(name))
    if reason:
        raise UsageError(f"cannot run on {name}: {reason}")


def cmd_peak(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from mlpbench.devices import threads
    from mlpbench.measure.peak import ceiling, get_peak

    _device_ok(args.device)
    modes = validate.no_repeats("--mode", args.mode or ["fp32"])
    with threads(threads_of(args)):
        results = [asdict(get_peak(args.device, m, refresh=args.refresh)) for m in modes]
        if args.bandwidth:
            from mlpbench.measure.bandwidth import get_bandwidth

            bw = asdict(get_bandwidth(args.device, refresh=args.refresh))
            results.append({**bw, "mode": "bandwidth"})
    if args.json:
        print_json(results)
    for r in results if not args.json else []:
        if r["mode"] == "bandwidth":
            print(f"{r['device']} memory bandwidth: copy {r['copy_gbs']:.1f} GB/s, triad "
                  f"{r['triad_gbs']:.1f} GB/s ({r['threads']} threads, torch {r['torch']})")
            continue
        print(f"{r['device']} {r['mode']}: {r['gflops']:.1f} GFLOP/s "
              f"(n={r['size']}, {r['threads']} threads, {r['units']}, torch {r['torch']}); "
              f"{_peak_taken(r)}")
        bound, how = ceiling(r["device"], r["mode"], r["threads"])
        print(f"  physical ceiling: {bound:.1f} GFLOP/s = {how}" if bound is not None
              else f"  physical ceiling: {how}")
    return 0


def _peak_taken(r: dict) -> str:
    """When and under what load a (cached) peak was measured, with its spread."""
    import time

    if not r.get("measured_at"):
        return "measured at an unrecorded time"
    age = (time.time() - r["measured_at"]) / 86400
    load = "unknown load" if r.get("load1") is None else f"load {r['load1']:.1f}"
    spread = "" if r.get("spread") is None else f", spread {r['spread']:.0%} over passes"
    when = f"{age * 24:.1f} h ago" if age < 1 else f"{age:.1f} days ago"
    return f"measured {when} at {load}{spread}"


def cmd_sweep(args: argparse.Namespace) -> int:
    from mlpbench.measure.timing import TimerConfig
    from mlpbench.studies.sweep import PRESETS, config_from_args

    timer = None
    if args.budget is not None:
        base = PRESETS.get(args.preset or "", {}).get("timer", TimerConfig())
        timer = TimerConfig(**{**base.__dict__, "budget_s": args.budget})
    config = config_from_args(
        args.preset, devices=args.devices, dtypes=args.dtypes, frameworks=args.frameworks,
        input_dims=args.input_dims, widths=args.widths, depths=args.depths,
        batches=args.batches, phases=args.phases, activation=args.activation,
        threads=threads_of(args), modes=args.modes, seed=args.seed, timer=timer,
        isolate=False if args.no_isolate else None, retries=args.retries,
        yardstick=False if args.no_yardstick else None)
    print(jobs.sweep(config, args.out, resume=args.resume, progress=not args.quiet))
    return 0


def cmd_converge(args: argparse.Namespace) -> int:
    from mlpbench.problems.runner import Budget, RunSettings
    from mlpbench.studies.convergence import DEFAULT_OPTIMIZERS, lr_grid

    _device_ok(args.device)
    lrs = ()
    if args.lr_grid:
        parts = args.lr_grid.split(":")
        if len(parts) != 3:
            raise UsageError(f"--lr-grid must be LO:HI:N, got {args.lr_grid!r}")
        lrs = lr_grid(validate.positive_float("--lr-grid LO", parts[0]),
                      validate.positive_float("--lr-grid HI", parts[1]),
                      validate.positive_int("--lr-grid N", parts[2], maximum=MAX_LR_POINTS))
    optimizers = args.optimizer or list(DEFAULT_OPTIMIZERS)
    for text in optimizers:
        if not text.isascii():
            raise UsageError(f"optimizer {text!r}: only ASCII names and numbers")
    checks.converge(args.workload or ["teacher"], optimizers, device=args.device,
                    max_steps=args.max_steps, every=args.eval_every, seeds=args.seeds,
                    lr_points=len(lrs))
    print(jobs.converge(
        args.out, workloads=args.workload or ["teacher"],
        optimizers=optimizers, seeds=list(range(args.seeds)),
        device=args.device, budget=Budget(args.max_steps, args.max_seconds,
                                          args.max_grad_evals),
        settings=RunSettings(eval_every=args.eval_every), lr_values=lrs,
        n_threads=threads_of(args), resume=args.resume, progress=not args.quiet))
    return 0


def cmd_newton_cost(args: argparse.Namespace) -> int:
    from mlpbench.spec import MLPSpec
    from mlpbench.studies.newton_cost import (
        DEFAULT_WIDTHS,
        METHOD_OPERATIONS,
        OPERATIONS,
        CostConfig,
    )

    _device_ok(args.device)
    one = (args.input_dim, args.width, args.depth)
    networks = ()
    if any(v is not None for v in one):
        if any(v is None for v in one):
            raise UsageError("give all of --input-dim, --width and --depth for one network")
        networks = (MLPSpec(*one),)
    specs = networks or CostConfig(widths=args.widths or DEFAULT_WIDTHS,
                                   include_target=not args.no_target).specs()
    if args.method in ("all", "newton_cg"):
        checks.cg_iters(args.cg_iters, specs)
    checks.data_batch(args.batch, specs)
    cfg = CostConfig(widths=args.widths or DEFAULT_WIDTHS, include_target=not args.no_target,
                     batch=args.batch, cg_iters=args.cg_iters, device=args.device,
                     threads=threads_of(args), max_op_seconds=args.max_op_seconds,
                     operations=METHOD_OPERATIONS.get(args.method, OPERATIONS),
                     networks=networks)
    print(jobs.newton_cost(cfg, args.out, resume=args.resume, per_cost=args.per_cost,
                           refuse=args.method == "newton", progress=not args.quiet))
    return 0
