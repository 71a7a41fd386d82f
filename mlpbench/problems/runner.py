"""Run an optimizer on a workload to its target loss under a budget.

Only the optimizer's steps are timed (CUDA synchronized around each); the full-batch train
and held-out losses are evaluated between steps, off the clock (as in AlgoPerf). A run ends
with one status:

* ``target`` — the full-batch train loss reached the workload's target;
* ``diverged`` — the loss became NaN/Inf or grew past ``DIVERGE_FACTOR`` × its start (also
  when the optimizer itself raises on non-finite values);
* ``converged`` — progress stalled (relative improvement of the best loss below
  ``stall_tol`` over ``patience`` evaluations) above the target, e.g. in a local minimum;
* ``budget`` — steps, seconds or gradient evaluations ran out.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import pandas as pd
import torch

from mlpbench.devices import synchronize
from mlpbench.errors import UsageError
from mlpbench.optimizers import Objective, resolve
from mlpbench.optimizers.base import Counters
from mlpbench.problems.workloads import Workload

#: a loss this many times its initial value counts as diverged
DIVERGE_FACTOR = 1e4
STATUSES = ("target", "converged", "diverged", "budget")


@dataclass(frozen=True)
class Budget:
    """When a run gives up (whichever comes first)."""

    max_steps: int = 2000
    max_seconds: float = 30.0  # optimizer time only, evaluation excluded
    max_grad_evals: float = math.inf  # in full-batch gradient equivalents (samples / n_train)

    def __post_init__(self) -> None:
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) \
                or self.max_steps <= 0:
            raise UsageError(f"max_steps must be a positive integer, got {self.max_steps!r}")
        for name in ("max_seconds", "max_grad_evals"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0):  # NaN fails too
                raise UsageError(f"{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class RunSettings:
    """How a run is observed."""

    eval_every: int = 1  # steps between loss evaluations (off the clock)
    patience: int = 200  # evaluations without relative progress before 'converged'
    stall_tol: float = 1e-6  # relative improvement of the best loss that counts as progress

    def __post_init__(self) -> None:
        if not (self.eval_every > 0 and self.patience > 0 and self.stall_tol >= 0):
            raise UsageError(f"invalid run settings: {self}")


@dataclass
class RunResult:
    """One run: its identity, outcome and trajectory."""

    workload: str
    optimizer: str
    seed: int
    device: str
    status: str
    steps: int
    time_s: float
    grad_evals: float
    final_loss: float
    final_test_loss: float
    target_loss: float
    steps_to_target: float  # NaN unless status == 'target'
    time_to_target: float
    grad_evals_to_target: float
    trajectory: pd.DataFrame
    # raw work counts (each on one batch): forward+backward passes, forward-only passes,
    # Hessian-vector products, dense Hessians; and the last three in full-batch units
    closure_calls: int = 0
    forward_calls: int = 0
    hvps: int = 0
    hessians: int = 0
    forward_evals: float = 0.0
    hvp_evals: float = 0.0
    hessian_evals: float = 0.0

    def summary(self) -> dict:
        row = asdict(self)
        row.pop("trajectory")
        return row


class _Minibatches:
    """An endless stream of minibatch indices: a fresh seeded permutation each epoch."""

    def __init__(self, n: int, batch: int | None, seed: int, device: torch.device) -> None:
        self.n, self.batch = n, batch
        self.gen = torch.Generator().manual_seed(seed)
        self.device = device
        self.perm = torch.empty(0, dtype=torch.long)
        self.pos = 0

    def next(self) -> torch.Tensor | None:
        if self.batch is None or self.batch >= self.n:
            return None  # full batch
        if self.pos + self.batch > self.perm.numel():
            self.perm = torch.randperm(self.n, generator=self.gen).to(self.device)
            self.pos = 0
        idx = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return idx


#: the trajectory's work columns, in full-batch units (samples / n_train)
WORK_COLUMNS = ("grad_evals", "forward_evals", "hvp_evals", "hessian_evals")


def _work(counters: Counters, n: int) -> tuple[float, float, float, float]:
    return (counters.samples / n, counters.forward_samples / n, counters.hvp_samples / n,
            counters.hessian_samples / n)


def _numeric_failure(exc: BaseException) -> bool:
    """Whether an optimizer's exception means the iterate left the floating-point range."""
    text = str(exc).lower()
    return any(w in text for w in ("overflow", "nan", "inf", "not finite", "non-finite"))


def run(workload: Workload, optimizer: str, *, seed: int = 0, budget: Budget = Budget(),
        settings: RunSettings = RunSettings()) -> RunResult:
    """Train a fresh model (initialized from ``seed``) on ``workload`` with ``optimizer``."""
    chosen = resolve(optimizer)
    device = workload.x_train.device
    torch.manual_seed(seed)
    model = workload.make_model(seed)
    opt = chosen.build(model)
    batches = _Minibatches(workload.n_train, chosen.batch_size, seed, device)
    counters = Counters()
    n = workload.n_train
    loss0, test0 = workload.losses(model)
    target = workload.target_for(loss0)
    rows = [(0, 0.0, 0.0, 0.0, 0.0, 0.0, loss0, test0)]
    best, best_at, clock, status = loss0, 0, 0.0, "budget"
    step = 0
    if not math.isfinite(loss0):
        status = "diverged"
    elif loss0 <= target:
        status = "target"
    objective = Objective(model, workload.x_train, workload.y_train, workload.loss_fn, counters)
    cuda = device.type == "cuda"
    while status == "budget" and step < budget.max_steps:
        idx = batches.next()
        if idx is not None:
            objective.x, objective.y = workload.x_train[idx], workload.y_train[idx]
        if cuda:
            synchronize(device)
        start = time.perf_counter()
        try:
            opt.step(objective)
        except (RuntimeError, ValueError, OverflowError) as exc:
            if not _numeric_failure(exc):
                raise
            status = "diverged"  # e.g. a step size that overflows fp32
            rows.append((step + 1, clock, *_work(counters, n), math.nan, math.nan))
            break
        if cuda:
            synchronize(device)
        clock += time.perf_counter() - start
        step += 1
        if step % settings.eval_every and step < budget.max_steps:
            continue
        loss, test = workload.losses(model)
        evals = counters.samples / n
        rows.append((step, clock, *_work(counters, n), loss, test))
        if not math.isfinite(loss) or loss > DIVERGE_FACTOR * max(loss0, 1e-12):
            status = "diverged"
        elif loss <= target:
            status = "target"
        elif loss < best * (1 - settings.stall_tol):
            best, best_at = loss, len(rows)
        elif len(rows) - best_at > settings.patience:
            status = "converged"
        if clock > budget.max_seconds or evals > budget.max_grad_evals:
            break
    traj = pd.DataFrame(rows, columns=["step", "time_s", *WORK_COLUMNS, "train_loss",
                                       "test_loss"])
    last = traj.iloc[-1]
    hit = status == "target"
    return RunResult(
        workload=workload.name, optimizer=str(chosen), seed=seed, device=str(device),
        status=status, steps=int(last["step"]), time_s=float(last["time_s"]),
        grad_evals=float(last["grad_evals"]), final_loss=float(last["train_loss"]),
        final_test_loss=float(last["test_loss"]), target_loss=target,
        steps_to_target=float(last["step"]) if hit else math.nan,
        time_to_target=float(last["time_s"]) if hit else math.nan,
        grad_evals_to_target=float(last["grad_evals"]) if hit else math.nan,
        trajectory=traj, closure_calls=counters.closure_calls,
        forward_calls=counters.forward_evals, hvps=counters.hvps, hessians=counters.hessians,
        forward_evals=float(last["forward_evals"]), hvp_evals=float(last["hvp_evals"]),
        hessian_evals=float(last["hessian_evals"]))


