"""``mlpbench distributed``: data-parallel (DDP) training-step scaling under torchrun.

Registered by :func:`register`; the study itself is
:func:`mlpbench.studies.distributed.run_distributed`.
"""

from __future__ import annotations

import argparse
import sys

from mlpbench.errors import UsageError


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None


def _words(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def register(subparsers) -> argparse.ArgumentParser:
    """Register the ``distributed`` subcommand on an argparse subparsers object."""
    p = subparsers.add_parser(
        "distributed", help="data-parallel (DDP) training-step scaling and all-reduce bandwidth")
    p.add_argument("--backend", default="gloo", help="gloo (CPU) or nccl (GPUs)")
    p.add_argument("--world-sizes", type=_ints, default=(1, 2),
                   help="total ranks, e.g. 1,2 (multiples of --nnodes)")
    p.add_argument("--input-dims", type=_ints, default=(10,))
    p.add_argument("--widths", type=_ints, default=(64,))
    p.add_argument("--depths", type=_ints, default=(2,))
    p.add_argument("--batches", type=_ints, default=(32,),
                   help="global batch (strong scaling) or per-worker batch (weak scaling)")
    p.add_argument("--scaling", type=_words, default=("strong", "weak"), help="strong,weak")
    p.add_argument("--bucket-cap-mb", type=_floats, default=(25.0,),
                   help="DDP gradient bucket sizes in MiB, e.g. 1,25")
    p.add_argument("--steps", type=int, default=10, help="timed samples per mode")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=1,
                   help="repeats of the grid, world sizes interleaved")
    p.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-collectives", action="store_true",
                   help="skip the all-reduce bandwidth ladder")
    p.add_argument("--nnodes", type=int, default=1, help="nodes (run the command on each)")
    p.add_argument("--node-rank", type=int, default=0, help="this node's rank (0 writes)")
    p.add_argument("--master-addr", default="127.0.0.1", help="address of node 0")
    p.add_argument("--master-port", type=int, help="rendezvous port on node 0 "
                   "(default: a free port per launch; required with --nnodes > 1)")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds one torchrun launch may take before it is killed")
    p.add_argument("--pg-timeout", type=float, default=120.0,
                   help="process-group timeout in seconds (a stuck collective fails)")
    p.add_argument("--out", "-o", default="runs/distributed", help="output folder")
    p.add_argument("--resume", action="store_true", help="skip launches already in --out")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--inject-fault", choices=["crash", "hang"], help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_distributed)
    return p


def config_from_args(args: argparse.Namespace):
    """The :class:`~mlpbench.studies.distributed.DistConfig` the flags describe."""
    from mlpbench.studies.distributed import DistConfig

    return DistConfig(
        backend=args.backend, world_sizes=args.world_sizes, input_dims=args.input_dims,
        widths=args.widths, depths=args.depths, batches=args.batches, scalings=args.scaling,
        bucket_caps_mb=args.bucket_cap_mb, steps=args.steps, warmup=args.warmup,
        rounds=args.rounds, threads=args.threads, seed=args.seed,
        collectives=not args.no_collectives, nnodes=args.nnodes, node_rank=args.node_rank,
        master_addr=args.master_addr, master_port=args.master_port,
        launch_timeout_s=args.timeout, pg_timeout_s=args.pg_timeout, fault=args.inject_fault)


def cmd_distributed(args: argparse.Namespace) -> int:
    """Run the study; print the per-point summary (failed launches are rows)."""
    from mlpbench.studies.distributed import run_distributed

    config = config_from_args(args)

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr)

    frame = run_distributed(config, args.out, resume=args.resume, log=log)
    if config.node_rank != 0:
        print(f"node {config.node_rank} done; node 0 writes the results")
        return 0
    if frame.empty:
        raise UsageError("nothing was measured")
    cols = ["round", "world_size", "scaling", "params", "batch_per_worker", "status",
            "step_s", "compute_s", "comm_share", "efficiency"]
    print(frame[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    names = ["distributed.csv", "distributed.json"] + ([] if args.no_collectives
                                                       else ["collectives.csv"])
    print(f"results: {args.out}/ ({', '.join(names)})")
    failed = int((frame["status"] == "failed").sum())
    if failed:  # a failure is a result (a row with its reason), as in the sweep
        print(f"{failed} rows failed; see the reason column and {args.out}/logs/",
              file=sys.stderr)
    return 0
