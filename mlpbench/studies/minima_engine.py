"""Many GD/SGD runs of one small ReLU MLP at once: the minima study's vectorised runner.

:func:`mlpbench.convergence.run` takes ~0.7 ms per step on these P ≤ 100 networks (Python
and dispatch overhead; Intel Xeon 2 vCPU VM, torch 2.13.0+cpu), so the ≥ 100 initialisations ×
optimizers × learning rates × budgets of the study (tens of millions of steps) do not fit in
its time box. Here M models share one batched forward/backward (parameters as an (M, P)
matrix), with the runner's rules replicated exactly: the same initialisation
(``workload.make_model(seed)``), the same per-seed minibatch order (a fresh
``randperm`` from ``Generator().manual_seed(seed)`` each epoch), the plain SGD update
``θ ← θ − η∇``, and the same evaluation-time stopping rules (target, divergence at
``DIVERGE_FACTOR`` × the initial loss, stall after ``patience`` evaluations without a
relative improvement ``stall_tol``). ``tests/test_minima.py`` checks the trajectories
against :func:`~mlpbench.convergence.run`; the study also reruns a subsample through it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mlpbench.problems.runner import DIVERGE_FACTOR, RunSettings
from mlpbench.problems.workloads import Workload


def layer_shapes(model: nn.Sequential) -> tuple[tuple[int, int], ...]:
    """(fan_in, fan_out) of each Linear layer of ``model`` (with bias, as in mlpbench)."""
    return tuple((m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear))


def forward(theta: torch.Tensor, x: torch.Tensor,
            shapes: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Outputs of the ReLU MLP(s) with flat parameters ``theta`` ((P,) or (M, P)).

    ``x`` is (N, d) or (M, N, d); the layout of ``theta`` is that of
    :func:`mlpbench.measure.second_order.flat_params` (W₀, b₀, W₁, b₁, ... row-major).
    """
    h, pos = x, 0
    lead = theta.shape[:-1]
    for k, (fi, fo) in enumerate(shapes):
        w = theta[..., pos:pos + fi * fo].reshape(*lead, fo, fi)
        b = theta[..., pos + fi * fo:pos + fi * fo + fo].unsqueeze(-2)
        pos += fi * fo + fo
        h = h @ w.transpose(-1, -2) + b
        if k < len(shapes) - 1:
            h = torch.relu(h)
    return h


def mse_each(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
             shapes: Sequence[tuple[int, int]]) -> torch.Tensor:
    """The mean squared error of each model: shape ``theta.shape[:-1]``."""
    return (forward(theta, x, shapes) - y).pow(2).mean(dim=(-2, -1))


@dataclass
class Snapshot:
    """A run's state when one of its step limits was reached (or when it stopped)."""

    status: str  # the runner's status: target / converged / diverged / budget
    steps: int
    loss: float  # full-batch train loss (fp32, as the runner measures it)
    theta: np.ndarray  # flat parameters (fp32 values)


class _Batches:
    """Per-seed minibatch indices, identical to :class:`mlpbench.convergence._Minibatches`."""

    def __init__(self, n: int, batch: int, seeds: Sequence[int]) -> None:
        self.n, self.batch = n, batch
        self.gens = [torch.Generator().manual_seed(s) for s in seeds]
        self.perm = torch.empty(len(seeds), 0, dtype=torch.long)
        self.pos = 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch > self.perm.shape[1]:
            self.perm = torch.stack([torch.randperm(self.n, generator=g) for g in self.gens])
            self.pos = 0
        idx = self.perm[:, self.pos:self.pos + self.batch]
        self.pos += self.batch
        return idx


def _check_limits(limits: Sequence[int], every: int) -> None:
    bad = [s for s in limits if s <= 0 or s % every]
    if bad:
        raise ValueError(f"step limits {bad} must be positive multiples of eval_every={every}")


def train_many(workload: Workload, seeds: Sequence[int], lrs: Sequence[float],
               batch: int | None, limits: Sequence[int],
               settings: RunSettings) -> list[list[Snapshot]]:
    """Train one model per (seed, lr) pair with GD (``batch=None``) or SGD.

    Returns, for each pair, one :class:`Snapshot` per entry of ``limits`` (step budgets,
    multiples of ``settings.eval_every``): the state a run with ``max_steps=limit`` would
    end in. A run that stopped earlier gives its stopping state for every larger limit.
    """
    _check_limits(limits, settings.eval_every)
    shapes = layer_shapes(workload.make_model(0))
    theta0 = [torch.cat([p.detach().reshape(-1) for p in workload.make_model(s).parameters()])
              for s in seeds]
    theta = torch.stack(theta0).clone().requires_grad_(True)
    lr = torch.tensor(list(lrs), dtype=theta.dtype).unsqueeze(1)
    x, y, n = workload.x_train, workload.y_train, workload.n_train
    full = batch is None or batch >= n
    batches = None if full else _Batches(n, batch, seeds)
    state = _EvalState(mse_each(theta.detach(), x, y, shapes), settings, workload.target_loss)
    out: list[list[Snapshot | None]] = [[None] * len(limits) for _ in seeds]
    state.record(out, limits, theta, 0)
    for step in range(1, max(limits) + 1):
        if not state.active.any():
            break
        if full:
            loss = mse_each(theta, x, y, shapes).sum()
        else:
            idx = batches.next()
            loss = mse_each(theta, x[idx], y[idx], shapes).sum()
        (g,) = torch.autograd.grad(loss, theta)
        with torch.no_grad():
            theta -= lr * g * state.active.unsqueeze(1)
        if step % settings.eval_every == 0:
            state.update(mse_each(theta.detach(), x, y, shapes), step)
            state.record(out, limits, theta, step)
    return out  # type: ignore[return-value]


class _EvalState:
    """The runner's evaluation-time stopping rules, for M runs at once."""

    def __init__(self, loss0: torch.Tensor, settings: RunSettings, target: float) -> None:
        self.s, self.target = settings, target
        self.loss0 = loss0.clone()
        self.loss = loss0.clone()
        m = loss0.shape[0]
        self.best = loss0.clone()
        self.best_at = torch.zeros(m, dtype=torch.long)
        self.n_evals = 0
        self.status = ["budget"] * m
        self.stop_step = [0] * m
        for i, v in enumerate(loss0.tolist()):
            if not math.isfinite(v):
                self.status[i] = "diverged"
            elif v <= target:
                self.status[i] = "target"
        self.active = torch.tensor([st == "budget" for st in self.status])

    def update(self, loss: torch.Tensor, step: int) -> None:
        self.n_evals += 1
        rows = self.n_evals + 1  # the runner's len(rows): the initial evaluation counts
        for i in torch.nonzero(self.active).flatten().tolist():
            v = float(loss[i])
            self.loss[i] = v
            if not math.isfinite(v) or v > DIVERGE_FACTOR * max(float(self.loss0[i]), 1e-12):
                self.status[i] = "diverged"
            elif v <= self.target:
                self.status[i] = "target"
            elif v < float(self.best[i]) * (1 - self.s.stall_tol):
                self.best[i], self.best_at[i] = v, rows
            elif rows - int(self.best_at[i]) > self.s.patience:
                self.status[i] = "converged"
            if self.status[i] != "budget":
                self.active[i] = False
                self.stop_step[i] = step

    def record(self, out: list, limits: Sequence[int], theta: torch.Tensor, step: int) -> None:
        for i, snaps in enumerate(out):
            for j, lim in enumerate(limits):
                if snaps[j] is not None:
                    continue
                stopped = not bool(self.active[i])
                if stopped or lim == step:
                    snaps[j] = Snapshot(self.status[i], self.stop_step[i] if stopped else step,
                                        float(self.loss[i]),
                                        theta[i].detach().double().numpy().copy())


__all__ = ["Snapshot", "forward", "layer_shapes", "mse_each", "train_many"]
