"""Convergence per unit of cost: Newton, Newton-CG, L-BFGS and first-order methods raced to
the same target on teacher–student problems of growing width, with cost in steps, wall time
and gradient-equivalents (gradient evaluations + measured HVP/gradient ratio × HVPs)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from mlpbench.measure.second_order import flat_loss, gradient, hvp_fwdrev
from mlpbench.measure.timing import TimerConfig, measure
from mlpbench.problems.runner import Budget, run
from mlpbench.problems.workloads import teacher

PER_COST_OPTIMIZERS = ("newton", "newton_cg[cg_iters=20]", "lbfgs", "gd[lr=0.1]",
                       "sgd[lr=0.05,batch=32]", "adam[lr=0.01,batch=32]")


def hvp_grad_ratio(workload, seed: int = 0) -> float:
    """Measured time of one forward-over-reverse HVP over one gradient, full batch."""
    model = workload.make_model(seed)
    f, theta = flat_loss(model, workload.loss_fn, workload.x_train, workload.y_train)
    v = torch.ones_like(theta)
    cfg = TimerConfig(budget_s=0.2)
    t_grad = measure(lambda: gradient(f, theta), config=cfg).median
    t_hvp = measure(lambda: hvp_fwdrev(f, theta, v), config=cfg).median
    return t_hvp / t_grad


def convergence_per_cost(widths: Sequence[int] = (4, 8, 16, 32, 64), seeds: int = 3,
                         optimizers: Sequence[str] = PER_COST_OPTIMIZERS,
                         budget=None, progress: bool = False) -> pd.DataFrame:
    """Newton, Newton-CG, L-BFGS, GD, SGD and Adam to the same target on teacher–student
    problems of growing student width.

    Cost is reported three ways: steps, optimizer wall time, and gradient-equivalents =
    gradient evaluations + r · HVP evaluations, with r the HVP/gradient time ratio measured
    on that problem (never assumed). Returns one row per run (table ``newton_runs``);
    :func:`mlpbench.analysis.newton.per_cost_table` aggregates it.
    """
    budget = budget or Budget(max_steps=3000, max_seconds=20)
    rows = []
    for w in widths:
        wl = teacher(teacher_width=4, student_width=w)
        ratio = hvp_grad_ratio(wl)
        p = wl.spec.num_params
        for opt in optimizers:
            for seed in range(seeds):
                res = run(wl, opt, seed=seed, budget=budget)
                hvp = float(res.trajectory["hvp_evals"].iloc[-1])
                rows.append({**res.summary(), "width": w, "params": p, "hvp_ratio": ratio,
                             "hvp_evals": hvp, "grad_equiv": res.grad_evals + ratio * hvp})
    return pd.DataFrame(rows)
