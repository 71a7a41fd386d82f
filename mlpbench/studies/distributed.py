"""Data-parallel training-step benchmark on ``torch.distributed`` (DDP), launched by torchrun.

For every round and world size, :func:`run_distributed` starts one ``torchrun`` (in its own
session, under a timeout) whose ranks run :mod:`mlpbench.studies.distributed_worker` over the
whole grid, then merges rank 0's results into ``distributed.csv`` / ``collectives.csv`` and
``distributed.json`` (``hardware``: node 0, ``node_hardware``: every node). World sizes are interleaved within a round
so that drift on a noisy machine hits them alike. A launch that fails or times out becomes
``failed`` rows with the reason; its processes are killed, never left behind.

Scaling: *strong* keeps the global batch fixed (per-worker batch = batch / P), *weak* keeps
the per-worker batch fixed (global batch = batch · P). In both, efficiency is
``samples/s(P) / (P · samples/s(1))`` against the same round's world-size-1 row.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import torch

from mlpbench.devices import (
    MEMORY_FRACTION,  # a point is skipped above this share of one node's free RAM
    describe_hardware,
)
from mlpbench.errors import UsageError
from mlpbench.measure.collectives import size_ladder
from mlpbench.results import RunFolder, Study
from mlpbench.spec import MLPSpec
from mlpbench.studies.distributed_launch import launch

BACKENDS = ("gloo", "nccl")
SCALINGS = ("strong", "weak")
#: keys of a point, in CSV column order
POINT_KEYS = ("scaling", "input_dim", "width", "depth", "batch", "bucket_cap_mb")


@dataclass(frozen=True)
class DistConfig:
    """One distributed study; every node of a multi-node run gets the same one."""

    backend: str = "gloo"  # gloo (CPU) or nccl (one GPU per rank)
    world_sizes: tuple[int, ...] = (1, 2)  # total ranks over all nodes
    input_dims: tuple[int, ...] = (10,)
    widths: tuple[int, ...] = (64,)
    depths: tuple[int, ...] = (2,)
    batches: tuple[int, ...] = (32,)  # global batch (strong) or per-worker batch (weak)
    scalings: tuple[str, ...] = SCALINGS
    bucket_caps_mb: tuple[float, ...] = (25.0,)  # DDP bucket_cap_mb (25 is torch's default)
    steps: int = 10  # timed samples per mode (with sync, no_sync, all-reduce alone)
    warmup: int = 3  # untimed steps per mode first
    rounds: int = 1  # repeats of the whole grid, world sizes interleaved
    threads: int = 1  # torch threads per rank
    seed: int = 0
    lr: float = 1e-3
    collectives: bool = True  # also measure the all-reduce bandwidth ladder
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int | None = None  # None: a free port per launch (single node only)
    launch_timeout_s: float = 600.0  # the whole torchrun of one round and world size
    pg_timeout_s: float = 120.0  # process-group timeout: a stuck collective raises
    fault: str | None = field(default=None, repr=False)  # tests only: "crash" or "hang"

    def __post_init__(self) -> None:
        validate(self)

    @property
    def points(self) -> list[dict[str, Any]]:
        return [dict(zip(POINT_KEYS, (s, d, w, L, b, c), strict=True))
                for s in self.scalings for d in self.input_dims for w in self.widths
                for L in self.depths for b in self.batches for c in self.bucket_caps_mb]


def _positive(name: str, values: tuple) -> None:
    if not values:
        raise UsageError(f"{name} must not be empty")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
            raise UsageError(f"{name} must be positive finite numbers, got {v!r}")
    if len(set(values)) != len(values):
        raise UsageError(f"{name}: {', '.join(map(str, values))} repeats a value")


def validate(c: DistConfig) -> None:
    """Raise :class:`UsageError` for a configuration that cannot run on this machine."""
    if c.backend not in BACKENDS:
        raise UsageError(f"unknown backend {c.backend!r}; choose from {', '.join(BACKENDS)}")
    for name in ("world_sizes", "input_dims", "widths", "depths", "batches", "bucket_caps_mb"):
        _positive(name.replace("_", "-"), getattr(c, name))
    for name in ("world_sizes", "input_dims", "widths", "depths", "batches"):
        if any(not isinstance(v, int) for v in getattr(c, name)):
            raise UsageError(f"{name.replace('_', '-')} must be integers")
    for name in ("steps", "rounds", "threads", "nnodes", "launch_timeout_s", "pg_timeout_s"):
        _positive(name.replace("_", "-"), (getattr(c, name),))
    if c.warmup < 0 or not 0 <= c.node_rank < c.nnodes:
        raise UsageError(f"need warmup >= 0 and 0 <= node-rank < nnodes, got {c.warmup}, "
                         f"{c.node_rank}, {c.nnodes}")
    bad = set(c.scalings) - set(SCALINGS)
    if bad or not c.scalings or len(set(c.scalings)) != len(c.scalings):
        raise UsageError(f"unknown scaling or repeat in {list(c.scalings)}; choose each once "
                         f"from {', '.join(SCALINGS)}")
    if c.fault not in (None, "crash", "hang"):
        raise UsageError(f"unknown fault {c.fault!r}")
    if c.nnodes > 1 and c.master_port is None:
        raise UsageError("a multi-node run needs --master-addr and --master-port")
    _check_capacity(c)


def _check_capacity(c: DistConfig) -> None:
    for ws in c.world_sizes:
        if ws % c.nnodes:
            raise UsageError(f"world size {ws} is not a multiple of --nnodes {c.nnodes}")
    per_node = max(c.world_sizes) // c.nnodes
    if c.backend == "nccl":
        if not torch.cuda.is_available():
            raise UsageError("backend nccl needs CUDA GPUs; none is available (use gloo)")
        if per_node > torch.cuda.device_count():
            raise UsageError(f"{per_node} ranks per node need {per_node} GPUs; this node has "
                             f"{torch.cuda.device_count()}")
    elif per_node * c.threads > (os.cpu_count() or 1):
        raise UsageError(f"{per_node} ranks x {c.threads} threads exceed the "
                         f"{os.cpu_count()} CPU cores of this node")


def check_port(addr: str, port: int) -> None:
    """Raise :class:`UsageError` when ``port`` cannot be bound here (in use or invalid)."""
    if not 0 < port < 65536:
        raise UsageError(f"--master-port must be in 1..65535, got {port}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("", port))  # all interfaces: the rendezvous store listens on all of them
        except OSError as exc:
            raise UsageError(f"--master-port {port} is not free: {exc.strerror}") from None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def per_worker_batch(point: dict, world_size: int) -> int | None:
    """The per-rank batch of a point, or ``None`` when strong scaling cannot split it evenly."""
    if point["scaling"] == "weak":
        return point["batch"]
    return point["batch"] // world_size if point["batch"] % world_size == 0 else None


def _skip_reason(point: dict, c: DistConfig, ws: int) -> str | None:
    b = per_worker_batch(point, ws)
    if b is None:
        return f"global batch {point['batch']} not divisible by world size {ws}"
    spec = MLPSpec(point["input_dim"], point["width"], point["depth"])
    # parameters, gradients and activations (spec), plus DDP's bucket copy of the gradients
    need = (spec.memory(batch=b).training + 4 * spec.num_params) * (ws // c.nnodes)
    avail = psutil.virtual_memory().available
    if c.backend == "gloo" and need > MEMORY_FRACTION * avail:
        return f"predicted {need / 2**30:.1f} GiB > {MEMORY_FRACTION:.0%} of free RAM"
    return None


def unit_key(point: dict, ws: int) -> str:
    b = per_worker_batch(point, ws)
    return f"d{point['input_dim']}-w{point['width']}-L{point['depth']}-b{b}-c{point['bucket_cap_mb']}"


def plan_for(c: DistConfig, ws: int, result_path: Path) -> dict[str, Any]:
    """The worker plan of one launch: distinct units (ws = 1 strong and weak coincide)."""
    units: dict[str, dict] = {}
    for p in c.points:
        if _skip_reason(p, c, ws) is None:
            units.setdefault(unit_key(p, ws), {
                "key": unit_key(p, ws), "input_dim": p["input_dim"], "width": p["width"],
                "depth": p["depth"], "batch_per_worker": per_worker_batch(p, ws),
                "bucket_cap_mb": p["bucket_cap_mb"]})
    params = [MLPSpec(u["input_dim"], u["width"], u["depth"]).num_params for u in units.values()]
    ladder = size_ladder(4 * max(params, default=1)) if c.collectives else []
    return {**asdict(c), "units": list(units.values()), "collective_bytes": ladder,
            "result_path": str(result_path)}


def _rows_for_launch(c: DistConfig, ws: int, rnd: int, result: dict, failure: str | None) -> list:
    got = {u["key"]: u for u in result.get("units", []) if u}
    rows = []
    for p in c.points:
        base = {"round": rnd, "world_size": ws, "nodes": c.nnodes, "backend": c.backend, **p,
                "batch_per_worker": per_worker_batch(p, ws), "threads": c.threads,
                "seed": c.seed, "torch": torch.__version__,
                "params": MLPSpec(p["input_dim"], p["width"], p["depth"]).num_params}
        skip = _skip_reason(p, c, ws)
        if skip:
            rows.append({**base, "status": "skipped", "reason": skip})
        elif unit_key(p, ws) in got:
            rows.append({**base, **{k: v for k, v in got[unit_key(p, ws)].items() if k != "key"}})
        else:
            rows.append({**base, "status": "failed", "reason": failure or "no result"})
    return rows


#: columns of rank 0's measurement of a point (absent, i.e. empty, on skipped/failed rows)
MEASURED = ("params", "step_s", "step_iqr_s", "compute_s", "compute_iqr_s", "allreduce_s",
            "allreduce_iqr_s", "n_steps", "step_s_rank_medians")


def add_derived(frame: pd.DataFrame) -> pd.DataFrame:
    """Samples/s, exposed communication, comm share, overlap and efficiency per row."""
    f = frame.reindex(columns=list(dict.fromkeys([*frame.columns, *MEASURED])))
    for col in MEASURED[:-1]:
        f[col] = pd.to_numeric(f[col])
    f["global_batch"] = f["batch_per_worker"] * f["world_size"]
    f["samples_per_s"] = f["global_batch"] / f["step_s"]
    f["comm_exposed_s"] = f["step_s"] - f["compute_s"]
    f["comm_share"] = (f["comm_exposed_s"].clip(lower=0) / f["step_s"]).clip(upper=1)
    hidden = (f["allreduce_s"] - f["comm_exposed_s"].clip(lower=0)) / f["allreduce_s"]
    f["overlap"] = hidden.where(f["world_size"] > 1).clip(0, 1)
    keys = ["round", *POINT_KEYS, "backend"]
    one = f[(f["world_size"] == 1) & (f["status"] == "ok")][[*keys, "samples_per_s"]]
    f = f.merge(one.rename(columns={"samples_per_s": "_base"}), on=keys, how="left")
    f["efficiency"] = f["samples_per_s"] / (f["world_size"] * f["_base"])
    return f.drop(columns="_base")


#: the study as a study of the store's contract: one launch (round, world size) per unit
STUDY = Study("distributed", "launch", ("distributed", "collectives"))


def save(folder: RunFolder, rows: list[dict], coll: list[dict], meta: dict) -> pd.DataFrame:
    """Write ``distributed.csv`` (+ derived columns), ``collectives.csv`` and the metadata."""
    frame = add_derived(pd.DataFrame(rows)) if rows else pd.DataFrame()
    folder.write("distributed", frame)
    if coll:  # no empty table: --no-collectives writes no collectives.csv
        folder.write("collectives", pd.DataFrame(coll))
    folder.write_meta(STUDY.kind, meta)
    return frame


def _done_launches(folder: RunFolder) -> tuple[list[dict], list[dict], set]:
    rows, coll = folder.rows("distributed"), folder.rows("collectives")
    done = {(r["round"], r["world_size"]) for r in rows if r["status"] in ("ok", "diverged")}
    rows = [r for r in rows if (r["round"], r["world_size"]) in done]
    coll = [r for r in coll if (r["round"], r["world_size"]) in done]
    return rows, coll, done


def run_distributed(c: DistConfig, out: str | os.PathLike, *, resume: bool = False,
                    log=print) -> pd.DataFrame:
    """Run the study; return the distributed table (only node rank 0 writes files)."""
    if c.master_port is not None and c.node_rank == 0:
        check_port(c.master_addr, c.master_port)
    if c.node_rank != 0:
        _launches(c, None, set(), log)
        return pd.DataFrame()
    config = {k: v for k, v in asdict(c).items() if k not in ("node_rank", "fault")}
    with RunFolder(out, STUDY, resume=resume, config=config) as folder:
        return _launches(c, folder, _done_launches(folder), log)


def _launches(c: DistConfig, folder: RunFolder | None, state, log) -> pd.DataFrame:
    rows, coll, done = state if folder is not None else ([], [], set())
    here = describe_hardware()
    # "hardware" is node 0's description (as in every other kind); "node_hardware" every node's
    meta = {"hardware": here, "node_hardware": [{"node_rank": 0, **here}],
            "torch": torch.__version__}
    if folder is not None:
        folder.write_meta(STUDY.kind, meta)
    ctx = {"machine_id": here["machine_id"], "hostname": here["hostname"]}
    with tempfile.TemporaryDirectory(prefix="mlpbench-dist-") as tmp:
        for rnd in range(c.rounds):
            for ws in c.world_sizes:
                if (rnd, ws) in done:
                    continue
                result_path = Path(tmp) / f"r{rnd}-ws{ws}" / "result.json"
                result_path.parent.mkdir(exist_ok=True)
                plan = plan_for(c, ws, result_path)
                port = c.master_port or free_port()
                result, failure, log_path = launch(plan, c, ws, port)
                log(f"round {rnd} world size {ws}: {failure or 'ok'}")
                if folder is None:
                    continue
                if failure:  # keep the torchrun log of a failed launch beside the results
                    (folder.path / "logs").mkdir(exist_ok=True)
                    shutil.copy(log_path, folder.path / "logs" / f"r{rnd}-ws{ws}.log")
                rows += [{**ctx, **r} for r in _rows_for_launch(c, ws, rnd, result, failure)]
                coll += [{**ctx, "round": rnd, "world_size": ws, "nodes": c.nnodes,
                          "backend": c.backend, **r} for r in result.get("collectives", [])]
                if result.get("hardware"):
                    meta["node_hardware"] = result["hardware"]
                save(folder, rows, coll, meta)
    return add_derived(pd.DataFrame(rows)) if rows else pd.DataFrame()
