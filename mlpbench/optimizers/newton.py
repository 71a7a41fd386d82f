"""Newton-type optimizers behind the common contract.

* :class:`Newton` — exact Newton: dense Hessian (vmapped HVPs), Cholesky solve of
  (H + λI)p = -g. When the factorization fails (H not positive definite) λ grows tenfold
  until it succeeds (Levenberg–Marquardt); an Armijo backtracking line search picks the step.
* :class:`NewtonCG` — Hessian-free: conjugate gradient on (H + λI)p = -g with HVPs only,
  truncated after ``cg_iters`` iterations, at tolerance, or on negative curvature.

Both refuse up front a model whose dense Hessian (Newton) would not fit in memory.
"""

from __future__ import annotations

import torch
from torch import nn

from mlpbench.devices import available_memory_bytes
from mlpbench.errors import UsageError
from mlpbench.measure.second_order import (
    gradient,
    hessian_vmap,
    hvp_fwdrev,
    hvp_revrev,
    set_flat_params,
)
from mlpbench.optimizers.base import Objective
from mlpbench.units import format_bytes

#: Armijo sufficient-decrease constant and backtracking factor (Nocedal & Wright, ch. 3)
ARMIJO_C1, BACKTRACK = 1e-4, 0.5
MAX_BACKTRACKS = 30
#: Levenberg–Marquardt: how far the damping may grow before the step falls back to -g
MAX_DAMPING = 1e8


def newton_bytes(num_params: int, element_bytes: int = 4) -> int:
    """Memory of one exact Newton step: the dense Hessian and its Cholesky factor (2·P²)."""
    return 2 * num_params * num_params * element_bytes


def require_newton_fits(num_params: int, have: int, element_bytes: int = 4) -> None:
    """Raise :class:`UsageError` when a Newton step on ``num_params`` needs more than ``have``."""
    need = newton_bytes(num_params, element_bytes)
    if need > have:
        raise UsageError(f"newton on P={num_params:,} parameters needs {format_bytes(need)} for "
                         f"the dense Hessian and its factor (memory model); "
                         f"{format_bytes(have)} available")


def check_newton_fits(model: nn.Module) -> None:
    """Refuse, before any work, a model whose Newton step cannot fit in device memory."""
    first = next(model.parameters())
    require_newton_fits(sum(q.numel() for q in model.parameters()),
                        available_memory_bytes(first.device), first.element_size())


def _armijo(f, theta: torch.Tensor, loss: torch.Tensor, g: torch.Tensor,
            p: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Backtrack t from 1 until f(θ + t·p) ≤ f(θ) + c₁·t·gᵀp; return (new θ, evaluations)."""
    slope = torch.dot(g, p)
    t = 1.0
    with torch.no_grad():
        for k in range(1, MAX_BACKTRACKS + 1):
            new = theta + t * p
            value = f(new)
            if torch.isfinite(value) and value <= loss + ARMIJO_C1 * t * slope:
                return new, k
            t *= BACKTRACK
    return theta + t * p, MAX_BACKTRACKS


def _apply(model: nn.Module, f, theta: torch.Tensor, loss: torch.Tensor, g: torch.Tensor,
           p: torch.Tensor, line_search: bool, counters, n: int) -> None:
    """Move the model's parameters along direction ``p`` (Armijo search or a full step)."""
    if line_search:
        theta, evals = _armijo(f, theta, loss, g, p)
        counters.forward_samples += evals * n
    else:
        theta = theta + p
    set_flat_params(model, theta)


class Newton:
    """Exact (damped) Newton with a dense Hessian."""

    def __init__(self, model: nn.Module, *, damping: float = 1e-4, line_search: bool = True,
                 batch_size: int | None = None) -> None:
        check_newton_fits(model)
        self.model = model
        self.damping = damping
        self.line_search = line_search
        self.batch_size = batch_size
        self.last_damping = damping
        self.fallbacks = 0  # steps where the damped Hessian never factored

    def direction(self, h: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Solve (H + λI)p = -g by Cholesky, growing λ until H + λI is positive definite."""
        lam = self.damping
        eye = torch.eye(h.shape[0], dtype=h.dtype, device=h.device)
        while lam <= MAX_DAMPING:
            factor, info = torch.linalg.cholesky_ex(h + lam * eye)
            if int(info) == 0:
                self.last_damping = lam
                return torch.cholesky_solve(-g.unsqueeze(1), factor).squeeze(1)
            lam *= 10
        self.fallbacks += 1
        return -g

    def step(self, objective: Objective) -> torch.Tensor:
        f, theta = objective.loss_of_flat()
        c = objective.counters
        with torch.no_grad():
            loss = f(theta)
        g = gradient(f, theta)
        h = hessian_vmap(f, theta)
        n = objective.x.shape[0]
        c.closure_calls += 1
        c.samples += n
        c.hessians += 1
        c.hvps += theta.numel()
        c.hvp_samples += theta.numel() * n
        _apply(self.model, f, theta, loss, g, self.direction(h, g), self.line_search, c, n)
        return loss


class NewtonCG:
    """Truncated Newton: CG on the damped Newton system using Hessian-vector products."""

    def __init__(self, model: nn.Module, *, cg_iters: int = 10, damping: float = 1e-3,
                 cg_tol: float = 1e-4, mode: str = "fwdrev", batch_size: int | None = None,
                 line_search: bool = True) -> None:
        self.model = model
        self.cg_iters = cg_iters
        self.damping = damping
        self.cg_tol = cg_tol
        self.hvp = hvp_fwdrev if mode == "fwdrev" else hvp_revrev
        self.batch_size = batch_size
        self.line_search = line_search
        self.last_cg_iters = 0

    def solve(self, f, theta: torch.Tensor, g: torch.Tensor, counters) -> torch.Tensor:
        """Approximately solve (H + λI)p = -g; stop on negative curvature."""
        p = torch.zeros_like(g)
        r = -g.clone()
        d = r.clone()
        rr = torch.dot(r, r)
        stop = self.cg_tol**2 * rr
        for k in range(self.cg_iters):
            hd = self.hvp(f, theta, d) + self.damping * d
            counters.hvps += 1
            curv = torch.dot(d, hd)
            if curv <= 0:  # negative curvature: keep what we have (or steepest descent)
                self.last_cg_iters = k
                return p if k > 0 else -g
            alpha = rr / curv
            p = p + alpha * d
            r = r - alpha * hd
            rr_new = torch.dot(r, r)
            if rr_new <= stop:
                self.last_cg_iters = k + 1
                return p
            d = r + (rr_new / rr) * d
            rr = rr_new
        self.last_cg_iters = self.cg_iters
        return p

    def step(self, objective: Objective) -> torch.Tensor:
        f, theta = objective.loss_of_flat()
        c = objective.counters
        n = objective.x.shape[0]
        with torch.no_grad():
            loss = f(theta)
        g = gradient(f, theta)
        c.closure_calls += 1
        c.samples += n
        before = c.hvps
        p = self.solve(f, theta, g, c)
        c.hvp_samples += (c.hvps - before) * n
        _apply(self.model, f, theta, loss, g, p, self.line_search, c, n)
        return loss
