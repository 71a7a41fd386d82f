"""Up-front bounds on the work a command would start: refused with one line (exit 2) before
anything is measured, instead of a run that never ends or exhausts memory.

Each bound is physical: a minibatch cannot hold more samples than the data has; optimizer
state and vectorised runs must fit the memory model's budget (the closed-form memory terms
``mlpbench params`` prints); conjugate gradient on P unknowns terminates within P
iterations in exact arithmetic, so more iterations than parameters are no Newton-CG step;
a loss evaluated every k steps needs at least k steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from mlpbench.errors import UsageError
from mlpbench.spec import MAX_COUNT, MLPSpec
from mlpbench.units import format_bytes, format_count

#: bytes of one result row held in memory while a study runs: a lower bound (a trajectory
#: row, the smallest, is a tuple of 8 Python numbers: 300 bytes by sys.getsizeof), so the
#: row-count check below never refuses a run that would fit
ROW_BYTES = 256


def _budget(device: str = "cpu") -> int:
    from mlpbench.devices import usable_memory_bytes

    return usable_memory_bytes(torch.device(device))


def _fits(what: str, need: int, device: str = "cpu") -> None:
    limit = _budget(device)
    if need > limit:
        raise UsageError(f"{what} would need {format_bytes(need)} (memory model), more than "
                         f"the {format_bytes(limit)} usable on {device}")


def eval_every(every: int, steps: int, names: str = "--eval-every and --max-steps") -> None:
    """A loss evaluated every ``every`` steps needs a budget of at least ``every`` steps."""
    if every > steps:
        flag, budget = names.split(" and ")
        raise UsageError(f"{flag} ({every:,}) must not exceed {budget} ({steps:,})")


def cg_iters(iters: int, specs: Sequence[MLPSpec], what: str = "--cg-iters") -> None:
    """CG iterations bounded by the largest parameter count P (CG's exact termination)."""
    p = max(s.num_params for s in specs)
    if iters > p:
        raise UsageError(f"{what} ({iters:,}) exceeds the parameter count P = {p:,}: CG on P "
                         "unknowns terminates within P iterations")


def data_batch(batch: int, specs: Sequence[MLPSpec], what: str = "--batch") -> None:
    """A batch of inputs and targets (fp32) for each network must fit in memory."""
    need = max(batch * (s.input_dim + s.output_dim) * 4 for s in specs)
    _fits(f"{what} {batch:,} (inputs and targets)", need)


def optimizer_on(name: str, optimizer: str, n_train: int, params: int,
                 spec: MLPSpec | None = None, device: str = "cpu") -> None:
    """``optimizer`` on a workload of ``n_train`` samples and ``params`` parameters (student
    ``spec`` when it is an MLP): its batch within the data, its state (L-BFGS history ...)
    within memory, CG iterations within P."""
    from mlpbench.optimizers import memory_model, resolve

    r = resolve(optimizer)
    batch = r.batch_size
    if batch is not None and batch > n_train:
        raise UsageError(f"{optimizer} on {name}: batch={batch:,} exceeds the {n_train:,} "
                         "training samples (that is full-batch GD: use batch=full or gd)")
    # the memory model's terms (fp32): the network's own, plus the registry's state size
    # (added here: the spec's model refuses state terms beyond any real optimizer's)
    base = (memory_model(spec, "gd", batch=batch or n_train).training if spec is not None
            else 2 * 4 * params)
    need = base + int(r.state_per_param * params) * 4
    _fits(f"{optimizer} on {name}", need, device)
    if "cg_iters" in r.hp and int(r.hp["cg_iters"]) > params:
        raise UsageError(f"{optimizer}: cg_iters ({int(r.hp['cg_iters']):,}) exceeds the "
                         f"parameter count P = {params:,} of {name}: CG on P unknowns "
                         "terminates within P iterations")


def rows(what: str, count: int) -> None:
    """``count`` stored rows must fit in memory (and in a 64-bit count)."""
    if count > MAX_COUNT:
        raise UsageError(f"{what}: {count:.3e} rows overflow a 64-bit count")
    _fits(f"{what} ({format_count(count)} rows)", count * ROW_BYTES)


def converge(workloads: Sequence[str], optimizers: Sequence[str], *, device: str,
             max_steps: int, every: int, seeds: int, lr_points: int = 0) -> None:
    """Every (workload, optimizer) pair of ``mlpbench converge``, before the first run: the
    runs and their loss trajectories (one row per evaluation) fit in memory."""
    from mlpbench.problems.workloads import make_workload

    eval_every(every, max_steps)
    runs = seeds * len(optimizers) * len(workloads) * (1 + lr_points)
    rows("--seeds × optimizers × workloads", runs)
    rows("the loss trajectories (--max-steps / --eval-every per run)",
         runs * (max_steps // every + 1))
    for name in dict.fromkeys(workloads):
        w = make_workload(name, seed=0, device="cpu")
        params = sum(p.numel() for p in w.make_model(0).parameters())
        for o in optimizers:
            optimizer_on(name, o, w.n_train, params, w.spec, device)


def minima(cfg: Any) -> None:
    """The grid of ``mlpbench minima``: batch sizes within each problem's data, the
    vectorised runs of one cell within memory, evaluation period within both budgets,
    the run count within a 64-bit count."""
    from mlpbench.problems.minima_workloads import make_minima_workload

    eval_every(cfg.eval_every, cfg.steps, "--eval-every and --steps")
    eval_every(cfg.eval_every, cfg.evals, "--eval-every and --evals")
    rows("--inits × --lrs × --problems × (--batch-sizes + GD) × 2 budgets",
         cfg.inits * len(cfg.lrs) * len(cfg.problems) * (len(cfg.batch_sizes) + 1) * 2)
    for problem in cfg.problems:
        w = make_minima_workload(problem, seed=cfg.data_seed)
        big = [b for b in cfg.batch_sizes if b > w.n_train]
        if big:
            raise UsageError(f"--batch-sizes {big[0]:,} exceeds the {w.n_train:,} training "
                             f"samples of {problem} (full-batch GD is always included)")
        per_run = w.spec.memory("fp32", w.n_train).training
        _fits(f"--inits {format_count(cfg.inits)} × {len(cfg.lrs)} learning rates on "
              f"{problem} (vectorised)", per_run * cfg.inits * len(cfg.lrs))


__all__ = ["cg_iters", "converge", "data_batch", "eval_every", "minima", "optimizer_on", "rows"]
