"""What a Newton step costs as P grows, measured against first-order steps.

For a grid of MLPs (d=10, two hidden layers of growing width, then the 10^7-parameter
network d=100, n_h=1000, L=10) the study times, on one batch, each operation in
:data:`OPERATIONS` and records its peak memory. Points are visited in increasing P; an
operation is skipped without being attempted when

* its memory model exceeds the device's usable memory (reason: predicted bytes), or
* the power law fitted to its smaller points predicts more than ``max_op_seconds``.

Every row records the measuring machine's memory budget (``usable_bytes``); the fits, the
Newton wall and the extrapolation to P = 9,111,001 are computed from the stored table by
:mod:`mlpbench.analysis.newton`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
import torch

from mlpbench.devices import (
    MEMORY_FRACTION,
    describe_hardware,
    device_skip_reason,
    resolve_device,
    threads,
    usable_memory_bytes,
)
from mlpbench.errors import UsageError
from mlpbench.fits import fit_power_law, predict
from mlpbench.measure.contention import Probe
from mlpbench.measure.contention import columns as contention_columns
from mlpbench.measure.memory import cuda_peak, guarded, host_peak, over_budget
from mlpbench.measure.second_order import hessian_chunk
from mlpbench.measure.timing import Measurement, TimerConfig, measure, time_once
from mlpbench.models import build_torch
from mlpbench.optimizers import memory_model
from mlpbench.optimizers.newton import block_budget, newton_bytes, require_newton_fits
from mlpbench.results import Study
from mlpbench.results.rows import run_rows
from mlpbench.spec import TARGET_SPEC, MLPSpec
from mlpbench.studies.newton_cost_ops import TimedOp, timed_op

KIND = "newton_cost"
#: one row per (P, operation), written as each operation is timed
STUDY = Study(KIND, "operation", (KIND,))
OPERATIONS = ("grad", "hvp_fwdrev", "hvp_revrev", "hessian", "solve", "newton_step",
              "newton_cg_step", "sgd_step", "adam_step")
DEFAULT_WIDTHS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)


@dataclass(frozen=True)
class CostConfig:
    """The cost-study grid and its limits."""

    widths: tuple[int, ...] = DEFAULT_WIDTHS  # d=10, L=2; P = w² + 13w + 1
    input_dim: int = 10
    depth: int = 2
    include_target: bool = True  # also the 10^7 network (first-order operations only fit)
    batch: int = 64
    cg_iters: int = 10
    device: str = "cpu"
    seed: int = 0
    threads: int | None = None
    memory_fraction: float = MEMORY_FRACTION  # usable share of device memory
    max_op_seconds: float = 60.0  # skip an operation predicted (by its fit) to take longer
    timer: TimerConfig = field(default_factory=lambda: TimerConfig(
        warmup=1, min_samples=3, max_samples=20, budget_s=0.5))
    hessian_chunk: int | None = None  # vmap chunk; None: sized from the memory budget
    operations: tuple[str, ...] = OPERATIONS
    networks: tuple[MLPSpec, ...] = ()  # explicit networks instead of the width grid

    def __post_init__(self) -> None:
        for w in self.widths:
            if isinstance(w, bool) or not isinstance(w, int) or w <= 0:
                raise UsageError(f"widths: {w!r} is not a positive integer")
        for op in self.operations:
            if op not in OPERATIONS:
                raise UsageError(f"unknown operation {op!r}; choose from {', '.join(OPERATIONS)}")
        if not (self.batch > 0 and self.cg_iters > 0 and self.max_op_seconds > 0):
            raise UsageError("batch, cg_iters and max_op_seconds must be positive")
        if not 0 < self.memory_fraction <= 1:
            raise UsageError(f"memory_fraction must be in (0, 1], got {self.memory_fraction}")

    def specs(self) -> list[MLPSpec]:
        if self.networks:
            specs = list(self.networks)
        else:
            specs = [MLPSpec(self.input_dim, w, self.depth) for w in self.widths]
            if self.include_target:
                specs.append(TARGET_SPEC)
        return sorted(set(specs), key=lambda s: s.num_params)


def predicted_op_bytes(spec: MLPSpec, op: str, batch: int, element: int = 4) -> int:
    """Memory model of one operation (parameters, activations, dense matrices)."""
    p = spec.num_params
    mem = memory_model(spec, "adam", "fp32", batch)
    base = mem.params + mem.grads + mem.activations
    if op in ("grad", "sgd_step"):
        return base
    if op == "adam_step":
        return mem.training
    if op in ("hvp_fwdrev", "hvp_revrev", "newton_cg_step"):
        return 2 * base + 6 * p * element  # dual numbers double the graph; CG vectors
    if op == "hessian":
        return p * p * element + block_budget(p) * element + base
    if op == "solve":
        return newton_bytes(p, element)
    if op == "newton_step":
        return newton_bytes(p, element) + base
    raise UsageError(f"unknown operation {op!r}")


def operation_callable(op: str, spec: MLPSpec, model, x, y, cfg: CostConfig,
                       state: dict[str, Any]) -> TimedOp:
    """The :class:`~mlpbench.studies.newton_cost_ops.TimedOp` performing one ``op`` on a frozen
    problem (the model's parameters are restored before every timed call)."""
    return timed_op(op, model, x, y, cfg.cg_iters, state.get("chunk"))


def _hessian_chunk(spec: MLPSpec, batch: int) -> int:
    """Rows per vmapped Hessian block, sized as the Newton optimizer sizes them
    (:func:`mlpbench.optimizers.newton.hessian_block`)."""
    p = spec.num_params
    units = spec.depth * spec.width + spec.output_dim
    return hessian_chunk(p, batch * units, block_budget(p))


def run_cost_study(cfg: CostConfig = CostConfig(), out: str | os.PathLike | None = None, *,
                   resume: bool = False, progress: bool = True) -> pd.DataFrame:
    """Measure every operation at every grid point; one row per (P, operation).

    With ``out``, the table ``newton_cost.csv`` is rewritten after every operation (a kill
    loses the operation in flight) and ``resume`` continues a stopped study. Each row carries
    ``usable_bytes``, the memory budget of the measuring machine, so the Newton wall is
    computed from the measurement, wherever the table is read.
    """
    device = resolve_device(cfg.device)
    reason = device_skip_reason(device)
    if reason:
        raise UsageError(f"cannot run the cost study on {cfg.device}: {reason}")
    meta = {"hardware": describe_hardware(), "torch": torch.__version__}
    return pd.DataFrame(run_rows(out, STUDY, asdict(cfg), lambda stored, save: _study_rows(
        cfg, device, stored, save, progress), resume=resume, meta=meta))


def _study_rows(cfg: CostConfig, device, rows: list[dict], save, progress: bool) -> list[dict]:
    from tqdm.auto import tqdm

    usable = usable_memory_bytes(device, cfg.memory_fraction)
    done = {(int(r["params"]), r["op"]) for r in rows}
    timed: dict[str, list[tuple[int, float]]] = {op: [] for op in cfg.operations}
    for r in rows:
        if r["status"] == "ok" and r["op"] in timed:
            timed[r["op"]].append((int(r["params"]), float(r["median_s"])))
    specs = cfg.specs()
    with threads(cfg.threads) as n_threads, tqdm(
            total=len(specs) * len(cfg.operations), desc="newton-cost", unit="op",
            disable=not progress) as bar:
        for spec in specs:
            p = spec.num_params
            gen = torch.Generator().manual_seed(cfg.seed)
            x = torch.randn(cfg.batch, spec.input_dim, generator=gen).to(device)
            y = torch.randn(cfg.batch, spec.output_dim, generator=gen).to(device)
            state = {"chunk": cfg.hessian_chunk or _hessian_chunk(spec, cfg.batch)}
            for op in cfg.operations:
                bar.update()
                if (p, op) in done:
                    continue
                bar.set_postfix_str(f"P={p:,} {op}")
                row = {"params": p, "width": spec.width, "depth": spec.depth,
                       "input_dim": spec.input_dim, "op": op, "batch": cfg.batch,
                       "device": device.type, "threads": n_threads, "seed": cfg.seed,
                       "predicted_bytes": predicted_op_bytes(spec, op, cfg.batch),
                       "usable_bytes": usable, "status": "ok", "reason": ""}
                row.update(_run_op(op, spec, x, y, cfg, state, usable, timed[op], device))
                if row["status"] == "ok":
                    timed[op].append((p, row["median_s"]))
                rows.append(row)
                save(rows)
    return rows


def _run_op(op, spec, x, y, cfg, state, usable, timed, device) -> dict[str, Any]:
    p = spec.num_params
    too_big = over_budget(predicted_op_bytes(spec, op, cfg.batch), device, cfg.memory_fraction)
    if too_big:
        return {"status": "skipped", "reason": too_big}
    fit = fit_power_law(timed)
    # a fit decides a skip only when it rests on >= 3 points and the last call already took
    # >= 1/1000 of the limit: fits through microsecond-scale calls extrapolate noise
    trusted = fit is not None and fit[3] >= 3 and max(timed)[1] >= cfg.max_op_seconds / 1e3
    if trusted and predict(fit, p) > cfg.max_op_seconds:
        return {"status": "skipped", "reason": f"predicted {predict(fit, p):.0f} s per call "
                f"(fitted P^{fit[0]:.2f}) > {cfg.max_op_seconds:g} s limit"}
    model = build_torch(spec, seed=cfg.seed, device=device)
    with guarded(device) as outcome, cuda_peak(device) as cbox, host_peak() as hbox:
        timed_fn = operation_callable(op, spec, model, x, y, cfg, state)
        with Probe(torch.get_num_threads()) as probe:
            m = _measure_op(timed_fn, device, cfg)
    if not outcome.ok:
        return outcome.as_row()
    # host peak of the whole measurement (setup included) as a multiple of P²·4 bytes; a
    # lower bound (memory freed by earlier points is reused without raising RSS)
    out = {**m.as_dict(), "host_peak_bytes": hbox[0], "peak_p2": hbox[0] / (4.0 * p * p),
           **timed_fn.extra(), **contention_columns(probe)}
    if cbox[0] is not None:
        out.update(cuda_peak_allocated=cbox[0].allocated, cuda_peak_reserved=cbox[0].reserved)
    return out


def _measure_op(op: TimedOp, device, cfg: CostConfig):
    """Slow operations (> 1 s per call) keep one sample: the second call, since the first
    pays one-time start-up costs (kernel selection, torch.func tracing); fast ones go
    through :func:`measure` (warm-up, then samples to budget). Every call starts from the
    same parameters (``op.setup``, off the clock)."""
    if time_once(op.fn, setup=op.setup, device=device) > 1.0:
        second = time_once(op.fn, setup=op.setup, device=device)
        if second > 1.0:
            return Measurement(times=(second,), warnings=("single sample (slow operation)",))
    return measure(op.fn, device=device, config=cfg.timer, setup=op.setup)


#: the operations each ``--method`` of ``mlpbench newton-cost`` measures
METHOD_OPERATIONS = {
    "newton": ("grad", "hessian", "solve", "newton_step"),
    "newton_cg": ("grad", "hvp_fwdrev", "hvp_revrev", "newton_cg_step"),
    "first_order": ("grad", "sgd_step", "adam_step"),
}


def refuse_newton(spec: MLPSpec, device: str = "cpu", fraction: float = 1.0) -> None:
    """Refuse up front a Newton run on ``spec`` that cannot fit (the memory model decides)."""
    require_newton_fits(spec.num_params, usable_memory_bytes(resolve_device(device), fraction))


__all__ = ["KIND", "METHOD_OPERATIONS", "OPERATIONS", "CostConfig", "operation_callable",
           "predicted_op_bytes", "refuse_newton", "run_cost_study"]


