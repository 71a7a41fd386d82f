"""Convergence per unit of cost: Newton, Newton-CG, L-BFGS and first-order methods raced to
the same target on teacher–student problems of growing width, with cost in steps, wall time
and gradient-equivalents (gradients + measured-cost-weighted forward evaluations, HVPs and
Hessians), plus raw counts."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from mlpbench.measure.second_order import flat_loss, gradient, hessian_vmap, hvp_fwdrev
from mlpbench.measure.timing import TimerConfig, measure
from mlpbench.optimizers.newton import hessian_block
from mlpbench.problems.runner import Budget, run
from mlpbench.problems.workloads import teacher

PER_COST_OPTIMIZERS = ("newton", "newton_cg[cg_iters=20]", "lbfgs", "gd[lr=0.1]",
                       "sgd[lr=0.05,batch=32]", "adam[lr=0.01,batch=32]")


def cost_ratios(workload, seed: int = 0) -> dict[str, float]:
    """Measured time, relative to one full-batch gradient, of one forward-only evaluation,
    one forward-over-reverse HVP and one dense Hessian (as the Newton optimizer builds it,
    :func:`~mlpbench.optimizers.newton.hessian_block`) on ``workload``'s full batch."""
    model = workload.make_model(seed)
    f, theta = flat_loss(model, workload.loss_fn, workload.x_train, workload.y_train)
    v = torch.ones_like(theta)
    cfg = TimerConfig(budget_s=0.2)
    chunk = hessian_block(model, workload.n_train)

    def forward() -> None:
        with torch.no_grad():
            f(theta)

    t_grad = measure(lambda: gradient(f, theta), config=cfg).median
    return {"forward_ratio": measure(forward, config=cfg).median / t_grad,
            "hvp_ratio": measure(lambda: hvp_fwdrev(f, theta, v), config=cfg).median / t_grad,
            "hessian_ratio": measure(lambda: hessian_vmap(f, theta, chunk_size=chunk),
                                     config=cfg).median / t_grad}


def grad_equivalents(result, ratios: dict[str, float]) -> float:
    """Work of a run in full-batch gradient-equivalents: gradients + measured-ratio-weighted
    forward evaluations, HVPs and dense Hessians (each in full-batch units)."""
    return (result.grad_evals + ratios["forward_ratio"] * result.forward_evals
            + ratios["hvp_ratio"] * result.hvp_evals
            + ratios["hessian_ratio"] * result.hessian_evals)


def convergence_per_cost(widths: Sequence[int] = (4, 8, 16, 32, 64), seeds: int = 3,
                         optimizers: Sequence[str] = PER_COST_OPTIMIZERS,
                         budget=None, progress: bool = False) -> pd.DataFrame:
    """Newton, Newton-CG, L-BFGS, GD, SGD and Adam to the same target on teacher–student
    problems of growing student width.

    Cost is reported three ways: optimizer wall time; gradient-equivalents
    (:func:`grad_equivalents`, ratios measured on that problem, never assumed — a dense
    Hessian counts as its measured cost, not as P HVPs); and raw counts (steps, gradients,
    forward-only evaluations, HVPs, Hessians). Returns one row per run (table ``newton_runs``);
    :func:`mlpbench.analysis.newton.per_cost_table` aggregates it.
    """
    budget = budget or Budget(max_steps=3000, max_seconds=20)
    rows = []
    for w in widths:
        wl = teacher(teacher_width=4, student_width=w)
        ratios = cost_ratios(wl)
        p = wl.spec.num_params
        # seeds outermost: the optimizers' runs interleave, so machine-load drift on a
        # shared host spreads over all of them instead of biasing one
        for seed in range(seeds):
            for opt in optimizers:
                res = run(wl, opt, seed=seed, budget=budget)
                rows.append({**res.summary(), "width": w, "params": p, **ratios,
                             "grad_equiv": grad_equivalents(res, ratios)})
    return pd.DataFrame(rows)
