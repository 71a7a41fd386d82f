"""The long polish of minima end points that the study's short polish left undecided.

A point is undecided (``unresolved``) when the short batched polish neither reached a
stationary point nor pinned it on a ReLU kink. Here each such point is polished again from
the run's own end point: thousands of fp64 L-BFGS-B iterations on a numpy loss and gradient
(cheap enough per call for that), then the second-order Levenberg–Marquardt polish of
:func:`mlpbench.studies.minima_classify.polish_many`, then ``eigvalsh`` of the exact Hessian.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from scipy.optimize import minimize

from mlpbench.problems.workloads import Workload
from mlpbench.studies.minima_classify import Polished, polish_many


def loss_grad_np(theta: np.ndarray, x: np.ndarray, y: np.ndarray,
                 shapes) -> tuple[float, np.ndarray]:
    """Mean squared error of the ReLU MLP with flat parameters ``theta`` and its gradient, in
    numpy fp64 (the layout and ReLU'(0) = 0 of :func:`mlpbench.studies.minima_engine.
    forward` and autograd; ``tests/test_minima.py`` checks it against torch). Hundreds of
    times cheaper per call than autograd on these P ≤ 100 problems, so L-BFGS-B can run
    thousands of iterations per end point."""
    layers, h, hs, zs, pos = [], x, [x], [], 0
    for k, (fi, fo) in enumerate(shapes):
        w = theta[pos:pos + fi * fo].reshape(fo, fi)
        layers.append((pos, w, fi, fo))
        z = h @ w.T + theta[pos + fi * fo:pos + fi * fo + fo]
        pos += fi * fo + fo
        h = np.maximum(z, 0.0) if k < len(shapes) - 1 else z
        zs.append(z)
        hs.append(h)
    r = h - y
    g, d = np.empty_like(theta), 2.0 * r / r.size
    for k in range(len(shapes) - 1, -1, -1):
        pos, w, fi, fo = layers[k]
        if k < len(shapes) - 1:
            d = d * (zs[k] > 0)
        g[pos:pos + fi * fo] = (d.T @ hs[k]).ravel()
        g[pos + fi * fo:pos + fi * fo + fo] = d.sum(0)
        d = d @ w
    return float(np.mean(r * r)), g


def lbfgs_np(workload: Workload, theta: np.ndarray, shapes, *, max_iter: int = 5000):
    """fp64 L-BFGS-B from ``theta`` on ``workload``'s train loss (numpy loss and gradient):
    ``(theta, iterations)``."""
    x = workload.x_train.detach().to("cpu", torch.float64).numpy()
    y = workload.y_train.detach().to("cpu", torch.float64).numpy()
    r = minimize(loss_grad_np, np.asarray(theta, dtype=np.float64), args=(x, y, shapes),
                 jac=True, method="L-BFGS-B",
                 options={"maxiter": max_iter, "gtol": 1e-12, "ftol": 0.0, "maxcor": 30,
                          "maxls": 50})
    return r.x, int(r.nit)


def resolve_many(workload: Workload, thetas: np.ndarray, shapes, *, lbfgs_iter: int = 5000,
                 lm_iter: int = 500) -> list[Polished]:
    """The long polish of end points a short one left undecided: fp64 L-BFGS-B for up to
    ``lbfgs_iter`` iterations from each run's end point, then the second-order
    Levenberg–Marquardt of :func:`polish_many` (Gauss–Newton with the exact Jacobian) for up
    to ``lm_iter``, then λ_min/λ_max from ``eigvalsh`` of the exact fp64 Hessian. The
    displacement is measured from the run's end point, so :data:`DISPLACEMENT_TOL` applies
    as in the short polish; ``iterations`` counts both stages."""
    th0 = np.asarray(thetas, dtype=np.float64)
    stage1 = [lbfgs_np(workload, t, shapes, max_iter=lbfgs_iter) for t in th0]
    out = polish_many(workload, np.stack([t for t, _ in stage1]), shapes, max_iter=lm_iter)
    return [dataclasses.replace(
        p, displacement=float(np.linalg.norm(p.theta - t0) / max(1.0, np.linalg.norm(t0))),
        iterations=its + p.iterations) for p, t0, (_, its) in zip(out, th0, stage1,
                                                                   strict=True)]


__all__ = ["lbfgs_np", "loss_grad_np", "resolve_many"]
