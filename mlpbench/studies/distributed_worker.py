"""The per-rank code of ``mlpbench distributed``: started by ``torchrun``, never by hand.

``python -m torch.distributed.run ... -m mlpbench.studies.distributed_worker PLAN.json``

Every rank builds the same seeded MLP, wraps it in ``DistributedDataParallel`` and times the
training step (SGD, MSE, fp32) two ways, interleaved sample by sample:

* **with sync** — the normal DDP step; gradient buckets are all-reduced while the backward
  pass still runs (overlap);
* **under** ``no_sync()`` — the same step with no communication at all: the compute time.

Their difference is the *exposed* communication time, what the all-reduce really adds to a
step. A third measurement all-reduces the gradient-sized buckets alone (no compute): the
communication time if nothing overlapped. Why differences and not DDP comm-hook timing or
the profiler: a hook sees when a bucket's all-reduce is launched and when its future
completes, which on an overlapped step includes waiting behind other buckets and the
backward pass, and the profiler perturbs the short steps it measures; the difference is what
a user pays, with no instrumentation inside the step.

Every sample starts after a barrier; a sample's time is the slowest rank's (rank 0 gathers
all ranks' samples). Rank 0 writes the results after each point (atomically), so a crash
loses only the point in flight; any rank that fails writes a one-line reason first.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from mlpbench.devices import describe_hardware, synchronize, threads
from mlpbench.measure.collectives import allreduce_samples, bandwidth_rows, slowest_rank, summarize
from mlpbench.measure.contention import Probe
from mlpbench.measure.contention import columns as contention_columns
from mlpbench.models import build_torch
from mlpbench.results.store import strict
from mlpbench.spec import MLPSpec


def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(strict(obj), indent=1, allow_nan=False))  # NaN -> null
    os.replace(tmp, path)


def _device(backend: str) -> torch.device:
    if backend == "nccl":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def _step_fn(ddp: DDP, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor):
    loss_fn = torch.nn.MSELoss()

    def step(sync: bool) -> float:
        opt.zero_grad(set_to_none=True)
        with nullcontext() if sync else ddp.no_sync():
            loss = loss_fn(ddp(x), y)
            loss.backward()
        opt.step()
        return loss.detach()

    return step


def _timed(fn, device: torch.device) -> float:
    dist.barrier()
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def measure_unit(unit: dict, plan: dict, device: torch.device) -> dict | None:
    """Time one (network, per-worker batch, bucket size) on every rank; rank 0 gets the row."""
    rank, n = dist.get_rank(), dist.get_world_size()
    spec = MLPSpec(unit["input_dim"], unit["width"], unit["depth"])
    model = build_torch(spec, seed=plan["seed"], device=device)
    ddp = DDP(model, bucket_cap_mb=unit["bucket_cap_mb"],
              device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.SGD(ddp.parameters(), lr=plan["lr"])
    gen = torch.Generator().manual_seed(plan["seed"] * 100_003 + rank)
    b = unit["batch_per_worker"]
    x = torch.randn(b, spec.input_dim, generator=gen).to(device)
    y = torch.randn(b, spec.output_dim, generator=gen).to(device)
    step = _step_fn(ddp, opt, x, y)
    for _ in range(plan["warmup"]):
        step(True)
        step(False)
    sync_t, nosync_t = [], []
    with Probe(torch.get_num_threads()) as probe:
        for i in range(plan["steps"]):  # alternate the order so drift hits both modes alike
            for sync in ((True, False) if i % 2 == 0 else (False, True)):
                (sync_t if sync else nosync_t).append(_timed(lambda s=sync: step(s), device))
    loss = float(step(True))
    grads = _buckets(model, unit["bucket_cap_mb"])
    ar_t = allreduce_samples(grads, steps=plan["steps"], warmup=1, device=device)
    mine = {"sync": sync_t, "nosync": nosync_t, "allreduce": ar_t, "loss": loss,
            "evidence": contention_columns(probe)}
    gathered: list = [None] * n
    dist.all_gather_object(gathered, mine)
    return _unit_row(unit, spec, gathered) if rank == 0 else None


def _worst_rank(gathered: list[dict]) -> dict:
    """The evidence of the rank whose measuring thread got the least CPU, and every rank's
    contention reasons (``rank r: ...``)."""
    evs = [g.get("evidence") or {} for g in gathered]
    if not any(evs):
        return {}
    worst = min(evs, key=lambda e: e.get("main_cpu_share", 1.0))
    why = [f"rank {r}: {e['contention']}" for r, e in enumerate(evs) if e.get("contention")]
    return {**worst, "contention": "; ".join(why)}


def _buckets(model: torch.nn.Module, cap_mb: float) -> list[torch.Tensor]:
    """The gradient bytes split into ``cap_mb`` chunks, as DDP's buckets split them."""
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()
    per = max(1, int(cap_mb * 2**20) // flat.element_size())
    return list(flat.split(per))


def _unit_row(unit: dict, spec: MLPSpec, gathered: list[dict]) -> dict:
    step = summarize(slowest_rank([g["sync"] for g in gathered]))
    compute = summarize(slowest_rank([g["nosync"] for g in gathered]))
    allreduce = summarize(slowest_rank([g["allreduce"] for g in gathered]))
    losses = [g["loss"] for g in gathered]
    finite = bool(np.all(np.isfinite(losses)))
    return {"key": unit["key"], "params": spec.num_params,
            "status": "ok" if finite else "diverged",
            "reason": "" if finite else f"non-finite loss {losses}",
            "step_s": step["median_s"], "step_iqr_s": step["iqr_s"],
            "compute_s": compute["median_s"], "compute_iqr_s": compute["iqr_s"],
            "allreduce_s": allreduce["median_s"], "allreduce_iqr_s": allreduce["iqr_s"],
            "n_steps": step["n_samples"], **_worst_rank(gathered),
            "step_s_rank_medians": json.dumps([float(np.median(g["sync"])) for g in gathered])}


def _node_hardware() -> list[dict]:
    """The hardware description of every node (local rank 0 of each), gathered on all ranks."""
    node = int(os.environ.get("GROUP_RANK", "0"))
    mine = {"node_rank": node, **describe_hardware()} if os.environ.get("LOCAL_RANK",
                                                                       "0") == "0" else None
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, mine)
    return sorted((g for g in gathered if g), key=lambda g: g["node_rank"])


def _fault(plan: dict) -> None:
    """Test hook: the last rank crashes or hangs when the plan asks for it."""
    if dist.get_rank() != dist.get_world_size() - 1:
        return
    if plan.get("fault") == "crash":
        raise RuntimeError("injected fault: rank crashed")
    if plan.get("fault") == "hang":
        time.sleep(10**6)


def run(plan: dict) -> None:
    """Measure every unit of the plan, then the all-reduce ladder; rank 0 writes the results."""
    with threads(plan["threads"]):
        _run(plan)


def _run(plan: dict) -> None:
    dist.init_process_group(plan["backend"], timeout=timedelta(seconds=plan["pg_timeout_s"]))
    device = _device(plan["backend"])
    rank = dist.get_rank()
    result: dict[str, Any] = {"world_size": dist.get_world_size(), "hardware": _node_hardware(),
                              "units": [], "collectives": [], "done": False}
    out = Path(plan["result_path"])
    if rank == 0:
        _atomic_json(out, result)
    _fault(plan)
    for unit in plan["units"]:
        row = measure_unit(unit, plan, device)
        if rank == 0:
            result["units"].append(row)
            _atomic_json(out, result)
    if plan["collective_bytes"]:
        result["collectives"] = bandwidth_rows(plan["collective_bytes"], steps=plan["steps"],
                                               warmup=2, device=device)
    result["done"] = True
    if rank == 0:
        _atomic_json(out, result)
    dist.barrier()
    dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    plan = json.loads(Path(argv[0]).read_text())
    try:
        run(plan)
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a one-line reason
        line = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        rank = os.environ.get("RANK", "?")
        err = Path(plan["result_path"]).with_name(f"error-rank{rank}.txt")
        err.write_text(f"rank {rank}: {line}\n")
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
