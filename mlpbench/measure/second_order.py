"""Second-order building blocks on an MLP loss over flat parameters (``torch.func``).

The loss is viewed as f(θ) for the flat vector θ of all P parameters, through
``torch.func.functional_call``. From it:

* :func:`gradient` — ∇f(θ), reverse mode;
* :func:`hvp_fwdrev` — H·v as forward-over-reverse, ``jvp(grad(f))``;
* :func:`hvp_revrev` — H·v as reverse-over-reverse, ``vjp(grad(f))``;
* :func:`hessian_vmap` — the dense P×P Hessian as ``vmap`` of forward-over-reverse HVPs over
  the identity's columns (chunked to bound memory);
* :func:`hessian_loop` — the same with a Python loop of P HVPs (the baseline vmap beats);
* :func:`gnvp` — the Gauss–Newton-vector product Jᵀ H_ℓ J v for MSE losses.

Iterative solvers (Newton-CG) run under :func:`op_time_limit`: a limit on the seconds one
operation may take, checked inside their loops (:func:`check_time`).
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.func import functional_call, grad, jvp, vjp, vmap

#: activation-sized tensors one vmapped forward-over-reverse HVP keeps alive per row
#: (primal and tangent of pre- and post-activations, and their cotangents; measured, see
#: tests/test_newton_memory.py)
DUAL_FACTOR = 8

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: seconds one iterative operation may take (``None``: no limit), and what sets it
_TIME_LIMIT: contextvars.ContextVar[tuple[float, str] | None] = contextvars.ContextVar(
    "mlpbench_op_time_limit", default=None)


class OpTimeLimit(RuntimeError):
    """An iterative operation ran past its :func:`op_time_limit` (a ``failed`` result)."""


@contextlib.contextmanager
def op_time_limit(seconds: float | None, what: str = "--max-op-seconds") -> Iterator[None]:
    """Within this block, iterative operations stop (raise :class:`OpTimeLimit`) once one
    call has run ``seconds``; ``what`` names the setting in the message."""
    token = _TIME_LIMIT.set(None if seconds is None else (float(seconds), what))
    try:
        yield
    finally:
        _TIME_LIMIT.reset(token)


def check_time(started: float, done: int, total: int, name: str) -> None:
    """Raise :class:`OpTimeLimit` when the operation begun at ``started``
    (``time.perf_counter``) has used up the current limit after ``done`` of ``total``
    iterations."""
    limit = _TIME_LIMIT.get()
    if limit is not None and time.perf_counter() - started > limit[0]:
        raise OpTimeLimit(f"{name} stopped after {done:,} of {total:,} iterations: over the "
                          f"{limit[0]:g} s limit ({limit[1]})")


def flat_params(model: nn.Module) -> torch.Tensor:
    """All parameters of ``model`` as one detached flat vector."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def unflatten(model: nn.Module, theta: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split a flat vector into ``{name: tensor}`` shaped like ``model``'s parameters."""
    named = list(model.named_parameters())
    # split (not slicing): its backward concatenates, where slices would each scatter
    # into a P-sized zero tensor, making the gradient O(P x layers)
    pieces = theta.split([p.numel() for _, p in named])
    return {name: piece.view_as(p) for (name, p), piece in zip(named, pieces, strict=True)}


def flat_loss(model: nn.Module, loss_fn: LossFn, x: torch.Tensor,
              y: torch.Tensor) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    """``(f, θ)`` with f(θ) = loss of ``model`` at parameters θ on ``(x, y)``."""

    def f(theta: torch.Tensor) -> torch.Tensor:
        return loss_fn(functional_call(model, unflatten(model, theta), (x,)), y)

    return f, flat_params(model)


def set_flat_params(model: nn.Module, theta: torch.Tensor) -> None:
    """Write a flat vector back into ``model``'s parameters."""
    with torch.no_grad():
        for p, new in zip(model.parameters(), unflatten(model, theta).values(), strict=True):
            p.copy_(new)


def gradient(f: Callable, theta: torch.Tensor) -> torch.Tensor:
    return grad(f)(theta)


def hvp_fwdrev(f: Callable, theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """H·v, forward-over-reverse: the JVP of the gradient along v."""
    return jvp(grad(f), (theta,), (v,))[1]


def hvp_revrev(f: Callable, theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """H·v, reverse-over-reverse: the VJP of the gradient with v (H is symmetric)."""
    _, pullback = vjp(grad(f), theta)
    return pullback(v)[0]


def hessian_vmap(f: Callable, theta: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
    """Dense P×P Hessian: vmapped forward-over-reverse HVPs on the identity's rows.

    The result is preallocated and filled ``chunk_size`` rows at a time (default: all P at
    once), so besides the P² result only one block of unit vectors and its HVPs live at a
    time: extra memory ∝ chunk × (2P + the batch's dual activations).
    """
    p = theta.numel()
    chunk = min(p, chunk_size or p)
    out = torch.empty(p, p, dtype=theta.dtype, device=theta.device)
    batched = vmap(lambda v: hvp_fwdrev(f, theta, v))
    for start in range(0, p, chunk):
        rows = min(chunk, p - start)
        block = torch.zeros(rows, p, dtype=theta.dtype, device=theta.device)
        block[torch.arange(rows), torch.arange(start, start + rows)] = 1
        out[start:start + rows] = batched(block)
        del block
    return out


def hessian_chunk(num_params: int, dual_elements: int, budget_elements: int) -> int:
    """Rows per block of :func:`hessian_vmap` so that the blocks' extra memory, about
    ``chunk × (2P + DUAL_FACTOR × dual_elements)`` elements, stays within ``budget_elements``
    (at least 1). ``dual_elements`` is the batch's activation count (batch × units)."""
    per_row = 2 * num_params + DUAL_FACTOR * dual_elements
    return int(max(1, min(num_params, budget_elements // max(per_row, 1))))


def hessian_loop(f: Callable, theta: torch.Tensor) -> torch.Tensor:
    """Dense Hessian from a Python loop of P HVPs (slow baseline for :func:`hessian_vmap`)."""
    cols = []
    for i in range(theta.numel()):
        e = torch.zeros_like(theta)
        e[i] = 1
        cols.append(hvp_fwdrev(f, theta, e))
    return torch.stack(cols)


def gnvp(model: nn.Module, x: torch.Tensor, theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Gauss–Newton-vector product Jᵀ(2/N)J·v for the mean-squared-error loss.

    J is the Jacobian of the network outputs with respect to θ; 2/N is the Hessian of the MSE
    loss in the outputs (N = number of output elements).
    """

    def out(t: torch.Tensor) -> torch.Tensor:
        return functional_call(model, unflatten(model, t), (x,))

    o, jv = jvp(out, (theta,), (v,))
    _, pullback = vjp(out, theta)
    return pullback(jv * (2.0 / o.numel()))[0]
