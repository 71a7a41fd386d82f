"""``mlpbench distributed``: data-parallel (DDP) training-step scaling under torchrun.

Registered by :func:`register`; the study itself is
:func:`mlpbench.studies.distributed.run_distributed`.
"""

from __future__ import annotations

import argparse
import sys

from mlpbench.cli.common import (
    float_list,
    int_list,
    non_negative_int,
    positive_float,
    positive_int,
    thread_count,
    word_list,
)
from mlpbench.errors import UsageError

#: the largest DDP bucket: a bucket holds gradients, and no network here has more than
#: 10^7 parameters (~38 MiB of fp32); 1 TiB leaves every physical setting open
MAX_BUCKET_MB = 2.0**20
#: one launch or one collective may wait at most a day; longer is a hang, not a setting
MAX_TIMEOUT_S = 86_400.0
#: a TCP port
MAX_PORT = 65_535


def register(subparsers) -> argparse.ArgumentParser:
    """Register the ``distributed`` subcommand on an argparse subparsers object."""
    p = subparsers.add_parser(
        "distributed", help="data-parallel (DDP) training-step scaling and all-reduce bandwidth")
    p.add_argument("--backend", default="gloo", help="gloo (CPU) or nccl (GPUs)")
    p.add_argument("--world-sizes", type=int_list("--world-sizes"), default=(1, 2),
                   help="total ranks, e.g. 1,2 (multiples of --nnodes)")
    p.add_argument("--input-dims", type=int_list("--input-dims"), default=(10,))
    p.add_argument("--widths", type=int_list("--widths"), default=(64,))
    p.add_argument("--depths", type=int_list("--depths"), default=(2,))
    p.add_argument("--batches", type=int_list("--batches"), default=(32,),
                   help="global batch (strong scaling) or per-worker batch (weak scaling)")
    p.add_argument("--scaling", type=word_list("--scaling"), default=("strong", "weak"),
                   help="strong,weak")
    p.add_argument("--bucket-cap-mb", type=float_list("--bucket-cap-mb", MAX_BUCKET_MB),
                   default=(25.0,),
                   help="DDP gradient bucket sizes in MiB, e.g. 1,25")
    p.add_argument("--steps", type=positive_int("--steps"), default=10,
                   help="timed samples per mode")
    p.add_argument("--warmup", type=non_negative_int("--warmup"), default=3)
    p.add_argument("--rounds", type=positive_int("--rounds"), default=1,
                   help="repeats of the grid, world sizes interleaved")
    p.add_argument("--threads", type=thread_count(), default=1, help="torch threads per rank")
    p.add_argument("--seed", type=non_negative_int("--seed"), default=0)
    p.add_argument("--no-collectives", action="store_true",
                   help="skip the all-reduce bandwidth ladder")
    p.add_argument("--nnodes", type=positive_int("--nnodes"), default=1,
                   help="nodes (run the command on each)")
    p.add_argument("--node-rank", type=non_negative_int("--node-rank"), default=0,
                   help="this node's rank (0 writes)")
    p.add_argument("--master-addr", default="127.0.0.1", help="address of node 0")
    p.add_argument("--master-port", type=positive_int("--master-port", MAX_PORT),
                   help="rendezvous port on node 0 "
                   "(default: a free port per launch; required with --nnodes > 1)")
    p.add_argument("--timeout", type=positive_float("--timeout", maximum=MAX_TIMEOUT_S),
                   default=600.0,
                   help="seconds one torchrun launch may take before it is killed")
    p.add_argument("--pg-timeout", type=positive_float("--pg-timeout", maximum=MAX_TIMEOUT_S),
                   default=120.0,
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
    from mlpbench.validate import max_threads

    per_node = max(args.world_sizes) / args.nnodes
    if per_node > max_threads():
        raise UsageError(f"--world-sizes {max(args.world_sizes):,} over {args.nnodes} node(s) is "
                         f"{per_node:,.0f} ranks per node: at most {max_threads()} (the "
                         "--threads bound, one process per rank)")
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
