"""Newton-type optimizers behind the common contract.

* :class:`Newton` — exact Newton: dense Hessian (vmapped HVPs), Cholesky solve of
  (H + λI)p = -g. When the factorization fails (H not positive definite) λ grows tenfold
  until it succeeds (Levenberg–Marquardt); an Armijo backtracking line search picks the step.
* :class:`NewtonCG` — Hessian-free: conjugate gradient on (H + λI)p = -g with HVPs only,
  truncated after ``cg_iters`` iterations, at tolerance, or on negative curvature; under
  :func:`~mlpbench.measure.second_order.op_time_limit` it stops with
  :class:`~mlpbench.measure.second_order.OpTimeLimit` once a solve runs past the limit.

Both refuse up front a model whose dense Hessian (Newton) would not fit in memory.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from mlpbench.devices import available_memory_bytes
from mlpbench.errors import UsageError
from mlpbench.measure.second_order import (
    check_time,
    gradient,
    hessian_chunk,
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
#: LM update on the ratio ρ = actual / predicted decrease (Nocedal & Wright, alg. 4.1):
#: shrink λ tenfold after a good step (ρ > 3/4), grow it tenfold after a poor one (ρ < 1/4);
#: below MIN_DAMPING it becomes 0 (the pure Newton step), and grows from 0 to MIN_DAMPING
LM_GOOD, LM_POOR, LM_FACTOR, MIN_DAMPING = 0.75, 0.25, 10.0, 1e-10
#: share of P² the Hessian's row blocks may occupy (extra to H itself), and the model's total
BLOCK_SHARE = 0.125
NEWTON_P2_FACTOR = 2 + BLOCK_SHARE
#: ... but at least this many elements (256 MiB of fp32): tiny blocks make small-P Hessians
#: slow (one vmap call per few rows)
BLOCK_FLOOR = 2**26


def newton_bytes(num_params: int, element_bytes: int = 4) -> int:
    """Memory model of one exact Newton step: the dense Hessian H, its Cholesky factor, and
    the Hessian's row blocks in flight (budgeted at ``BLOCK_SHARE``·P², at least
    ``BLOCK_FLOOR``, see :func:`hessian_block`): ``NEWTON_P2_FACTOR``·P² + ``BLOCK_FLOOR``
    elements.

    The step shifts H's diagonal in place and solves with two triangular solves, so nothing
    else P²-sized is allocated (the old step allocated I, λI, H + λI and a copy of the factor
    inside ``cholesky_solve``: ~5–11 P²). ``tests/test_newton_memory.py`` checks the model
    against the measured host peak.
    """
    return int(NEWTON_P2_FACTOR * num_params * num_params * element_bytes
               + BLOCK_FLOOR * element_bytes)


def hessian_block(model: nn.Module, batch: int) -> int:
    """Rows per vmapped block when building the Hessian of ``model`` on ``batch`` samples:
    the blocks may use ``BLOCK_SHARE``·P² elements, at least ``BLOCK_FLOOR`` (dual
    activations included)."""
    p = sum(q.numel() for q in model.parameters())
    units = sum(q.shape[0] for q in model.parameters() if q.dim() == 2)
    return hessian_chunk(p, batch * units, block_budget(p))


def block_budget(num_params: int) -> int:
    """Elements the Hessian's row blocks may occupy besides H."""
    return max(int(BLOCK_SHARE * num_params * num_params), BLOCK_FLOOR)


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
            p: torch.Tensor) -> tuple[torch.Tensor, int, torch.Tensor]:
    """Backtrack t from 1 until f(θ + t·p) ≤ f(θ) + c₁·t·gᵀp; return (new θ, forward
    evaluations, f at the full step t = 1)."""
    slope = torch.dot(g, p)
    t, first = 1.0, None
    with torch.no_grad():
        for k in range(1, MAX_BACKTRACKS + 1):
            new = theta + t * p
            value = f(new)
            first = value if first is None else first
            if torch.isfinite(value) and value <= loss + ARMIJO_C1 * t * slope:
                return new, k, first
            t *= BACKTRACK
    return theta + t * p, MAX_BACKTRACKS, first


def _apply(model: nn.Module, f, theta: torch.Tensor, loss: torch.Tensor, g: torch.Tensor,
           p: torch.Tensor, line_search: bool, counters, n: int) -> torch.Tensor:
    """Move the model's parameters along ``p`` (Armijo search, or the full step unless it
    raises the loss); count the forward evaluations; return f(θ + p)."""
    if line_search:
        theta, evals, full = _armijo(f, theta, loss, g, p)
    else:
        with torch.no_grad():
            full = f(theta + p)
        evals = 1
        if torch.isfinite(full) and full <= loss:
            theta = theta + p
    counters.forward_evals += evals
    counters.forward_samples += evals * n
    set_flat_params(model, theta)
    return full


def _forward(f, theta: torch.Tensor, counters, n: int) -> torch.Tensor:
    """f(θ) without a graph, counted as one forward-only evaluation."""
    with torch.no_grad():
        loss = f(theta)
    counters.forward_evals += 1
    counters.forward_samples += n
    return loss


class Newton:
    """Exact Newton with a dense Hessian and Levenberg–Marquardt damping carried across steps.

    ``damping`` is the initial λ; after each step λ shrinks tenfold when the quadratic model
    predicted the decrease well (ρ > 3/4) and grows tenfold when it did not (ρ < 1/4) or when
    H + λI does not factor, so near a strict minimum λ → 0 and the step becomes the pure
    Newton step (quadratic convergence).
    """

    def __init__(self, model: nn.Module, *, damping: float = 1e-4, line_search: bool = True,
                 batch_size: int | None = None) -> None:
        check_newton_fits(model)
        self.model = model
        self.damping = damping  # the current λ, carried between steps
        self.line_search = line_search
        self.batch_size = batch_size
        self.last_damping = damping  # the λ the last direction was solved with
        self.last_ratio = float("nan")  # ρ of the last step
        self.fallbacks = 0  # steps where the damped Hessian never factored

    def direction(self, h: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Solve (H + λI)p = -g by Cholesky from the current λ, growing λ tenfold until
        H + λI factors. H's diagonal is shifted in place and restored: besides H only the
        factor is P²-sized."""
        diag = h.diagonal()
        original = diag.clone()
        lam = self.damping
        try:
            while lam <= MAX_DAMPING:
                diag.copy_(original + lam)
                factor, info = torch.linalg.cholesky_ex(h)
                if int(info) == 0:
                    self.damping = self.last_damping = lam
                    y = torch.linalg.solve_triangular(factor, -g.unsqueeze(1), upper=False)
                    return torch.linalg.solve_triangular(factor.mT, y, upper=True).squeeze(1)
                del factor
                lam = max(lam * LM_FACTOR, MIN_DAMPING)
        finally:
            diag.copy_(original)
        self.fallbacks += 1
        self.damping = self.last_damping = MAX_DAMPING
        return -g

    def update_damping(self, ratio: float) -> None:
        """The LM update of λ from ρ = actual / predicted decrease."""
        if ratio > LM_GOOD:
            lam = self.damping / LM_FACTOR
            self.damping = 0.0 if lam < MIN_DAMPING else lam
        elif not ratio >= LM_POOR:  # also NaN
            self.damping = min(max(self.damping * LM_FACTOR, MIN_DAMPING), MAX_DAMPING)

    def step(self, objective: Objective) -> torch.Tensor:
        f, theta = objective.loss_of_flat()
        c = objective.counters
        n = objective.x.shape[0]
        loss = _forward(f, theta, c, n)
        g = gradient(f, theta)
        c.closure_calls += 1
        c.samples += n
        h = hessian_vmap(f, theta, chunk_size=hessian_block(self.model, n))
        c.hessians += 1
        c.hessian_samples += n
        p = self.direction(h, g)
        predicted = -(torch.dot(g, p) + 0.5 * torch.dot(p, h @ p))
        del h
        full = _apply(self.model, f, theta, loss, g, p, self.line_search, c, n)
        self.last_ratio = float((loss - full) / predicted) if predicted > 0 else float("nan")
        self.update_damping(self.last_ratio)
        return loss


class NewtonCG:
    """Truncated Newton: CG on the damped Newton system using Hessian-vector products.

    ``exact_iters=True`` runs exactly ``cg_iters`` iterations whatever the curvature or the
    residual (the cost study times a fixed amount of work this way)."""

    def __init__(self, model: nn.Module, *, cg_iters: int = 10, damping: float = 1e-3,
                 cg_tol: float = 1e-4, mode: str = "fwdrev", batch_size: int | None = None,
                 line_search: bool = True, exact_iters: bool = False) -> None:
        self.model = model
        self.cg_iters = cg_iters
        self.damping = damping
        self.cg_tol = cg_tol
        self.hvp = hvp_fwdrev if mode == "fwdrev" else hvp_revrev
        self.batch_size = batch_size
        self.line_search = line_search
        self.exact_iters = exact_iters
        self.last_cg_iters = 0

    def solve(self, f, theta: torch.Tensor, g: torch.Tensor, counters) -> torch.Tensor:
        """Approximately solve (H + λI)p = -g; stop on negative curvature or at tolerance
        (unless ``exact_iters``)."""
        p = torch.zeros_like(g)
        r = -g.clone()
        d = r.clone()
        rr = torch.dot(r, r)
        stop = -1.0 if self.exact_iters else self.cg_tol**2 * rr
        started = time.perf_counter()
        for k in range(self.cg_iters):
            check_time(started, k, self.cg_iters, "Newton-CG")
            hd = self.hvp(f, theta, d) + self.damping * d
            counters.hvps += 1
            curv = torch.dot(d, hd)
            if curv <= 0 and not self.exact_iters:  # negative curvature: keep what we have
                self.last_cg_iters = k + 1
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
        loss = _forward(f, theta, c, n)
        g = gradient(f, theta)
        c.closure_calls += 1
        c.samples += n
        before = c.hvps
        p = self.solve(f, theta, g, c)
        c.hvp_samples += (c.hvps - before) * n
        _apply(self.model, f, theta, loss, g, p, self.line_search, c, n)
        return loss
