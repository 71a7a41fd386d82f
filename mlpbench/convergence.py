"""Run an optimizer on a workload to its target loss under a budget, and studies built on it.

Only the optimizer's steps are timed (CUDA synchronized around each); the full-batch train
and held-out losses are evaluated between steps, off the clock (as in AlgoPerf). A run ends
with one status:

* ``target`` — the full-batch train loss reached the workload's target;
* ``diverged`` — the loss became NaN/Inf or grew past ``DIVERGE_FACTOR`` × its start;
* ``converged`` — progress stalled (relative improvement of the best loss below
  ``stall_tol`` over ``patience`` evaluations) above the target, e.g. in a local minimum;
* ``budget`` — steps, seconds or gradient evaluations ran out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch

from mlpbench.devices import describe_hardware, resolve_device, synchronize
from mlpbench.errors import UsageError
from mlpbench.optimizers import Objective, OptimizerId, batch_size_of, make_optimizer, resolve
from mlpbench.optimizers.base import Counters
from mlpbench.workloads import Workload, make_workload

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
        if self.max_steps <= 0 or self.max_seconds <= 0 or self.max_grad_evals <= 0:
            raise UsageError(f"budgets must be positive: {self}")


@dataclass(frozen=True)
class RunSettings:
    """How a run is observed."""

    eval_every: int = 1  # steps between loss evaluations (off the clock)
    patience: int = 200  # evaluations without relative progress before 'converged'
    stall_tol: float = 1e-6  # relative improvement of the best loss that counts as progress

    def __post_init__(self) -> None:
        if self.eval_every <= 0 or self.patience <= 0 or self.stall_tol < 0:
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


def run(workload: Workload, optimizer: str, *, seed: int = 0, budget: Budget = Budget(),
        settings: RunSettings = RunSettings()) -> RunResult:
    """Train a fresh model (initialized from ``seed``) on ``workload`` with ``optimizer``."""
    oid, _ = resolve(optimizer)
    device = workload.x_train.device
    torch.manual_seed(seed)
    model = workload.make_model(seed)
    opt = make_optimizer(oid, model)
    batches = _Minibatches(workload.n_train, batch_size_of(oid), seed, device)
    counters = Counters()
    n = workload.n_train
    loss0, test0 = workload.losses(model)
    rows = [(0, 0.0, 0.0, 0.0, loss0, test0)]
    best, best_at, clock, status = loss0, 0, 0.0, "budget"
    step = 0
    if not math.isfinite(loss0):
        status = "diverged"
    elif loss0 <= workload.target_loss:
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
        opt.step(objective)
        if cuda:
            synchronize(device)
        clock += time.perf_counter() - start
        step += 1
        if step % settings.eval_every and step < budget.max_steps:
            continue
        loss, test = workload.losses(model)
        evals = counters.samples / n
        rows.append((step, clock, evals, counters.hvp_samples / n, loss, test))
        if not math.isfinite(loss) or loss > DIVERGE_FACTOR * max(loss0, 1e-12):
            status = "diverged"
        elif loss <= workload.target_loss:
            status = "target"
        elif loss < best * (1 - settings.stall_tol):
            best, best_at = loss, len(rows)
        elif len(rows) - best_at > settings.patience:
            status = "converged"
        if clock > budget.max_seconds or evals > budget.max_grad_evals:
            break
    traj = pd.DataFrame(rows, columns=["step", "time_s", "grad_evals", "hvp_evals",
                                       "train_loss", "test_loss"])
    last = traj.iloc[-1]
    hit = status == "target"
    return RunResult(
        workload=workload.name, optimizer=str(oid), seed=seed, device=str(device),
        status=status, steps=int(last["step"]), time_s=float(last["time_s"]),
        grad_evals=float(last["grad_evals"]), final_loss=float(last["train_loss"]),
        final_test_loss=float(last["test_loss"]), target_loss=workload.target_loss,
        steps_to_target=float(last["step"]) if hit else math.nan,
        time_to_target=float(last["time_s"]) if hit else math.nan,
        grad_evals_to_target=float(last["grad_evals"]) if hit else math.nan,
        trajectory=traj)


def run_many(workloads: Sequence[str], optimizers: Sequence[str], seeds: Iterable[int], *,
             device: str = "cpu", budget: Budget = Budget(),
             settings: RunSettings = RunSettings(), data_seed: int = 0,
             progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every (workload, optimizer, seed): a summary table and the stacked trajectories.

    The data are drawn once per workload from ``data_seed``; ``seeds`` vary the model's
    initialization and the minibatch order.
    """
    from tqdm.auto import tqdm

    dev = resolve_device(device)
    for o in optimizers:
        resolve(o)
    seeds = list(seeds)
    hardware = describe_hardware()
    summaries, trajs = [], []
    total = len(workloads) * len(optimizers) * len(seeds)
    with tqdm(total=total, desc="converge", unit="run", disable=not progress) as bar:
        for wname in workloads:
            workload = make_workload(wname, seed=data_seed, device=dev)
            for opt in optimizers:
                for seed in seeds:
                    bar.set_postfix_str(f"{wname} {opt} seed={seed}")
                    res = run(workload, opt, seed=seed, budget=budget, settings=settings)
                    summaries.append({**res.summary(), "machine_id": hardware["machine_id"],
                                      "torch": torch.__version__,
                                      "threads": torch.get_num_threads()})
                    t = res.trajectory.assign(workload=wname, optimizer=res.optimizer,
                                              seed=seed)
                    trajs.append(t)
                    bar.update()
    return pd.DataFrame(summaries), pd.concat(trajs, ignore_index=True)


def aggregate(summary: pd.DataFrame) -> pd.DataFrame:
    """Median and spread over seeds per (workload, optimizer): steps, seconds and gradient
    evaluations to target (over the seeds that reached it), success rate and final loss."""

    def q(p):
        return lambda s: s.quantile(p)

    g = summary.groupby(["workload", "optimizer"])
    out = g.agg(
        runs=("seed", "count"),
        reached=("status", lambda s: int((s == "target").sum())),
        diverged=("status", lambda s: int((s == "diverged").sum())),
        steps_median=("steps_to_target", "median"),
        steps_q25=("steps_to_target", q(0.25)), steps_q75=("steps_to_target", q(0.75)),
        time_median=("time_to_target", "median"),
        time_q25=("time_to_target", q(0.25)), time_q75=("time_to_target", q(0.75)),
        evals_median=("grad_evals_to_target", "median"),
        evals_q25=("grad_evals_to_target", q(0.25)),
        evals_q75=("grad_evals_to_target", q(0.75)),
        final_loss_median=("final_loss", "median"),
    ).reset_index()
    out["success_rate"] = out["reached"] / out["runs"]
    return out


def lr_grid(lo: float, hi: float, num: int) -> list[float]:
    """A log-spaced learning-rate grid from ``lo`` to ``hi`` (DeepOBS style)."""
    if not (0 < lo < hi) or num < 2:
        raise UsageError(f"learning-rate grid needs 0 < lo < hi and at least 2 points, got "
                         f"{lo}:{hi}:{num}")
    return [float(v) for v in np.geomspace(lo, hi, num)]


def lr_sensitivity(workload: str, optimizers: Sequence[str], lrs: Sequence[float],
                   seeds: Iterable[int], **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each optimizer at every learning rate of ``lrs``; returns (per-run summary, best η).

    The best η reaches the target in most seeds, then fastest (median time to target);
    when no η reaches it, the one with the lowest median final loss.
    """
    grid = {}
    for o in optimizers:
        oid = resolve(o)[0]
        base = str(OptimizerId(oid.name, tuple(kv for kv in oid.params if kv[0] != "lr")))
        grid.update({str(oid.with_params(lr=lr)): (base, lr) for lr in lrs})
    summary, _ = run_many([workload], list(grid), seeds, **kwargs)
    summary["base"] = summary["optimizer"].map(lambda o: grid[o][0])
    summary["lr"] = summary["optimizer"].map(lambda o: grid[o][1])
    agg = summary.groupby(["base", "lr"]).agg(
        success=("status", lambda s: (s == "target").mean()),
        time_to_target=("time_to_target", "median"),
        final_loss=("final_loss", "median")).reset_index()
    best = (agg.assign(neg_success=-agg["success"])
            .sort_values(["base", "neg_success", "time_to_target", "final_loss"])
            .groupby("base").head(1).drop(columns="neg_success"))
    return summary, best.reset_index(drop=True)


MINIMA_BUDGET = Budget(max_steps=20_000, max_seconds=60.0)


def minima_study(batch_sizes: Sequence[int | str] = ("full", 64, 16, 4), seeds: int = 20,
                 lr: float = 0.1, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """GD vs SGD on ``local_minima``: the fraction of initializations reaching the global
    minimum (the target) with full-batch GD and with SGD at each batch size, same η.

    Returns (per-run summary, per-optimizer table). With a constant η, small batches also
    meet a noise floor: the table's median final loss tells the two failure modes apart.
    """
    ids = [f"gd[lr={lr:g}]" if b == "full" else f"sgd[lr={lr:g},batch={b}]"
           for b in batch_sizes]
    # long runs, so that "slow" is not mistaken for "stuck": a run stalls only after 2,000
    # steps without progress
    kwargs.setdefault("budget", MINIMA_BUDGET)
    kwargs.setdefault("settings", RunSettings(eval_every=50, patience=40, stall_tol=1e-4))
    summary, traj = run_many(["local_minima"], ids, range(seeds), **kwargs)
    table = summary.groupby("optimizer", sort=False).agg(
        runs=("seed", "count"),
        reached_global=("status", lambda s: int((s == "target").sum())),
        stalled=("status", lambda s: int((s == "converged").sum())),
        out_of_budget=("status", lambda s: int((s == "budget").sum())),
        median_final_loss=("final_loss", "median")).reset_index()
    table["fraction_global"] = table["reached_global"] / table["runs"]
    return summary, table


__all__ = ["Budget", "RunResult", "RunSettings", "STATUSES", "aggregate", "lr_grid",
           "lr_sensitivity", "minima_study", "run", "run_many"]


DEFAULT_OPTIMIZERS = ("gd", "sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad",
                      "lbfgs", "lbfgs[line_search=none]")


def converge_to_dir(out, *, workloads: Sequence[str], optimizers: Sequence[str],
                    seeds: Sequence[int], device: str = "cpu", budget: Budget = Budget(),
                    settings: RunSettings = RunSettings(), lr_values: Sequence[float] = (),
                    minima: bool = False, progress: bool = True) -> dict[str, pd.DataFrame]:
    """The ``mlpbench converge`` job: runs, aggregates and optional studies, written to ``out``.

    Tables written: ``converge`` (one row per run), ``trajectories``, ``converge_agg``;
    with ``lr_values`` also ``lr_sensitivity`` and ``lr_best``; with ``minima`` also
    ``minima`` (GD vs SGD on the local-minima problem).
    """
    from mlpbench.results import prepare_out, write_meta, write_table
    from mlpbench.workloads import WORKLOADS

    for w in workloads:
        if w not in WORKLOADS:
            raise UsageError(f"unknown workload {w!r}; choose from {', '.join(WORKLOADS)}")
    for o in optimizers:
        resolve(o)
    path = prepare_out(out, "converge.csv")
    kw = dict(device=device, budget=budget, settings=settings, progress=progress)
    tables: dict[str, pd.DataFrame] = {}
    summary, traj = run_many(workloads, optimizers, seeds, **kw)
    tables.update(converge=summary, trajectories=traj, converge_agg=aggregate(summary))
    if lr_values:
        for w in workloads:
            runs, best = lr_sensitivity(w, optimizers, lr_values, seeds, **kw)
            tables["lr_sensitivity"] = pd.concat([tables.get("lr_sensitivity"), runs])
            tables["lr_best"] = pd.concat([tables.get("lr_best"), best.assign(workload=w)])
    if minima:
        runs, table = minima_study(seeds=max(len(seeds), 20), device=device,
                                   progress=progress)
        tables["minima"] = table
        tables["minima_runs"] = runs
    for kind, frame in tables.items():
        write_table(path, kind, frame)
    write_meta(path, "converge", {
        "hardware": describe_hardware(), "torch": torch.__version__,
        "config": {"workloads": list(workloads), "optimizers": list(optimizers),
                   "seeds": list(seeds), "device": device, "budget": asdict(budget),
                   "settings": asdict(settings), "lr_values": list(lr_values),
                   "minima": minima}})
    return tables
