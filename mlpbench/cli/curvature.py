"""The ``curvature-cost`` subcommand: per-step cost and memory of the structured-curvature
optimizers against SGD and Adam as P grows."""

from __future__ import annotations

import argparse

from mlpbench.cli.common import add_threads, ints, positive_int, threads_of, words


def register(sub) -> None:
    p = sub.add_parser("curvature-cost",
                       help="per-step cost of SOAP, KL-Shampoo, Muon, PSGD, Schedule-Free, "
                            "K-FAC vs SGD/Adam as P grows; the curvature wall")
    p.add_argument("--device", default="cpu")
    p.add_argument("--widths", type=ints, help="grid widths (d=10, L=2); default 32..1024")
    p.add_argument("--no-target", action="store_true",
                   help="leave out the 10^7-parameter network")
    p.add_argument("--methods", type=words,
                   help="sgd,adam,muon,sf_adamw,soap,kl_shampoo,psgd_kron,kfac (default all)")
    p.add_argument("--compile-widths", type=ints, default=(),
                   help="also time heavyball compiled (torch.compile) at these grid widths")
    p.add_argument("--batch", type=positive_int("--batch"), default=64)
    add_threads(p)
    p.add_argument("--out", "-o", default="runs/curvature", help="output folder")
    p.add_argument("--resume", action="store_true", help="continue the results in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_curvature_cost)


def cmd_curvature_cost(args: argparse.Namespace) -> int:
    from mlpbench.analysis.curvature import render_costs, step_costs
    from mlpbench.devices import device_skip_reason, resolve_device
    from mlpbench.errors import UsageError
    from mlpbench.problems.modes import inductor_cache_dir
    from mlpbench.studies.curvature import (
        DEFAULT_WIDTHS,
        METHODS,
        CurvatureConfig,
        run_curvature_study,
    )

    reason = device_skip_reason(resolve_device(args.device))
    if reason:
        raise UsageError(f"cannot run on {args.device}: {reason}")
    if args.compile_widths:
        inductor_cache_dir()  # compiled kernels cached across runs, as the modes study does
    cfg = CurvatureConfig(widths=tuple(args.widths or DEFAULT_WIDTHS),
                          include_target=not args.no_target,
                          methods=tuple(args.methods or METHODS),
                          compile_widths=tuple(args.compile_widths), batch=args.batch,
                          device=args.device, threads=threads_of(args))
    rows = run_curvature_study(cfg, args.out, resume=args.resume, progress=not args.quiet)
    print(render_costs(step_costs(rows)))
    print(f"results: {args.out}/")
    return 0
