"""The Newton cost study's timed operations, each on a frozen problem, and the isolated
measurement of a Newton step's peak memory.

Every timed call starts from the same parameters: operations that move the model (the
steps) get a ``setup`` that restores the initial parameters (and the optimizer's damping)
off the clock, so later calls never see a different problem than the first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mlpbench.measure.memory import host_peak
from mlpbench.measure.second_order import (
    flat_loss,
    flat_params,
    gradient,
    hessian_vmap,
    hvp_fwdrev,
    hvp_revrev,
    set_flat_params,
)
from mlpbench.models import build_torch
from mlpbench.optimizers.newton import Newton, NewtonCG, hessian_block
from mlpbench.problems.workloads import mse
from mlpbench.spec import MLPSpec

#: the fixed damping of the timed solve and Newton step (the step restores it every call)
TIMED_DAMPING = 1e-3


@dataclass
class TimedOp:
    """What to time: ``fn`` after an untimed ``setup`` (None: nothing to restore), and
    ``extra()`` — per-op facts recorded with the row (e.g. CG iterations actually run)."""

    fn: Callable[[], Any]
    setup: Callable[[], Any] | None = None
    extra: Callable[[], dict[str, Any]] = dict


def _restoring(model: nn.Module, reset: Callable[[], None] = lambda: None):
    theta0 = flat_params(model).clone()

    def setup() -> None:
        set_flat_params(model, theta0)
        reset()

    return setup


def timed_op(op: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, cg_iters: int,
             chunk: int | None) -> TimedOp:
    """The callable that performs one ``op`` of the cost study on ``model`` and ``(x, y)``."""
    f, theta = flat_loss(model, mse, x, y)
    v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(1)).to(theta)
    if op == "grad":
        return TimedOp(lambda: gradient(f, theta))
    if op == "hvp_fwdrev":
        return TimedOp(lambda: hvp_fwdrev(f, theta, v))
    if op == "hvp_revrev":
        return TimedOp(lambda: hvp_revrev(f, theta, v))
    if op == "hessian":
        return TimedOp(lambda: hessian_vmap(f, theta, chunk_size=chunk))
    return _step_op(op, model, x, y, cg_iters, chunk)


def _step_op(op, model, x, y, cg_iters, chunk) -> TimedOp:
    from mlpbench.optimizers import make_optimizer
    from mlpbench.optimizers.base import Objective

    obj = Objective(model, x, y, mse)
    if op == "solve":  # factor + triangular solves of the step's system, H frozen
        f, theta = flat_loss(model, mse, x, y)
        h = hessian_vmap(f, theta, chunk_size=chunk)
        g = gradient(f, theta)
        newton = Newton(model, damping=TIMED_DAMPING, line_search=False)
        return TimedOp(lambda: newton.direction(h, g),
                       lambda: setattr(newton, "damping", TIMED_DAMPING),
                       lambda: {"damping": newton.last_damping})
    if op == "newton_step":
        newton = Newton(model, damping=TIMED_DAMPING, line_search=False)
        return TimedOp(lambda: newton.step(obj),
                       _restoring(model, lambda: setattr(newton, "damping", TIMED_DAMPING)),
                       lambda: {"damping": newton.last_damping})
    if op == "newton_cg_step":
        cg = NewtonCG(model, cg_iters=cg_iters, cg_tol=0.0, line_search=False,
                      exact_iters=True)
        return TimedOp(lambda: cg.step(obj), _restoring(model),
                       lambda: {"cg_iters_run": cg.last_cg_iters})
    opt = make_optimizer("sgd[lr=1e-6,batch=full]" if op == "sgd_step"
                         else "adam[lr=1e-6,batch=full]", model)
    return TimedOp(lambda: opt.step(obj), _restoring(model))


def newton_peaks(spec: MLPSpec, batch: int, seed: int = 0) -> dict[str, float]:
    """Host peak memory of the Hessian build, the damped solve and a full Newton step, each
    as a multiple of P²·4 bytes (fp32). Run it in a fresh process
    (:class:`mlpbench.measure.isolation.Isolated`): a process's freed memory is reused, so
    earlier work would hide part of the peak. A warm-up on a tiny problem first loads the
    libraries (~100 MB, not part of any step)."""
    torch.manual_seed(seed)
    tiny = build_torch(MLPSpec(spec.input_dim, 2, 1), seed=seed)
    xs = torch.randn(batch, spec.input_dim)
    ys = torch.randn(batch, spec.output_dim)
    from mlpbench.optimizers.base import Objective

    Newton(tiny, line_search=False).step(Objective(tiny, xs, ys, mse))
    model = build_torch(spec, seed=seed)
    p = spec.num_params
    unit = 4.0 * p * p
    out: dict[str, float] = {"params": p, "batch": batch}
    f, theta = flat_loss(model, mse, xs, ys)
    hvp_fwdrev(f, theta, torch.ones_like(theta))  # warm-up on this model
    with host_peak() as box:  # first: memory freed by later parts would hide its peak
        Newton(model, damping=TIMED_DAMPING, line_search=False).step(Objective(model, xs, ys,
                                                                             mse))
    out["newton_step"] = box[0] / unit
    with host_peak() as box:  # the parts after it: lower bounds (freed pages are reused)
        h = hessian_vmap(f, theta, chunk_size=hessian_block(model, batch))
    out["hessian"] = box[0] / unit
    g = gradient(f, theta)
    with host_peak() as box:
        Newton(model, damping=TIMED_DAMPING, line_search=False).direction(h, g)
    out["solve"] = (box[0] + unit) / unit  # H was already held: count it
    return out


#: the largest P whose Newton peak is measured in a fresh process (a few seconds each)
PEAK_MAX_PARAMS = 10_000


def isolated_peaks(specs, batch: int, seed: int = 0) -> list[dict[str, Any]]:
    """:func:`newton_peaks` of each spec with P ≤ ``PEAK_MAX_PARAMS``, each in a fresh
    process; one row per (P, operation): ``params, op, peak_p2``; a size whose process
    failed is one row with ``op`` ``failed``, ``peak_p2`` NaN and the ``reason``."""
    from mlpbench.measure.isolation import Isolated

    rows: list[dict[str, Any]] = []
    with Isolated() as iso:
        for spec in specs:
            if spec.num_params > PEAK_MAX_PARAMS:
                continue
            failure: list[str] = []
            got = iso.run(newton_peaks, spec, batch, seed, on_error=failure.append)
            if not got:
                rows.append({"params": spec.num_params, "op": "failed", "peak_p2": math.nan,
                             "reason": failure[0] if failure else "no result"})
            for op in ("hessian", "solve", "newton_step") if got else ():
                rows.append({"params": spec.num_params, "op": op, "peak_p2": got[op]})
    return rows
