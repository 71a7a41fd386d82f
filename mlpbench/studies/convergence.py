"""Convergence studies over the runner: many (workload, optimizer, seed) runs, learning-rate
sensitivity (DeepOBS style). (GD vs SGD on spurious minima: :mod:`mlpbench.studies.minima`.)

Every run is written as soon as it ends (one row per run, tables rewritten atomically), so a
kill loses only the run in flight, and ``resume`` skips the runs already stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import pandas as pd
import torch

from mlpbench.devices import describe_hardware, resolve_device, threads
from mlpbench.errors import UsageError
from mlpbench.measure.contention import Probe
from mlpbench.measure.contention import columns as contention_columns
from mlpbench.optimizers import OptimizerId, resolve
from mlpbench.problems.runner import Budget, RunSettings, run
from mlpbench.problems.workloads import WORKLOADS, make_workload
from mlpbench.results import RunFolder, Study

KIND = "converge"
#: one row per run (and its trajectory), written as each run finishes
STUDY = Study(KIND, "run", (KIND, "trajectories", "lr_sensitivity"))
DEFAULT_OPTIMIZERS = ("gd", "sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad",
                      "lbfgs", "lbfgs[line_search=none]")

#: one job: (workload, optimizer id, seed, extra columns for the row)
Job = tuple[str, str, int, dict[str, Any]]


def run_jobs(jobs: Sequence[Job], *, device: str = "cpu", budget: Budget = Budget(),
             settings: RunSettings = RunSettings(), data_seed: int = 0,
             progress: bool = False, save: Callable[[dict, pd.DataFrame], None] | None = None
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every job; ``save(summary_row, trajectory)`` is called after each one.

    The data are drawn once per workload from ``data_seed``; the seed varies the model's
    initialization and the minibatch order. Returns the summaries and stacked trajectories.
    """
    from tqdm.auto import tqdm

    dev = resolve_device(device)
    hardware = describe_hardware()
    workloads: dict[str, Any] = {}
    summaries, trajs = [], []
    for job in tqdm(jobs, desc="converge", unit="run", disable=not progress):
        wname, opt, seed, extra = job
        if wname not in workloads:
            workloads[wname] = make_workload(wname, seed=data_seed, device=dev)
        try:
            with Probe(torch.get_num_threads()) as probe:
                res = run(workloads[wname], opt, seed=seed, budget=budget, settings=settings)
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - one crashing optimizer is a result
            row, traj = _failed(workloads[wname], opt, seed, dev, exc), pd.DataFrame()
        else:
            row = {**res.summary(), **contention_columns(probe)}  # time_s: was it busy?
            traj = res.trajectory.assign(workload=wname, optimizer=res.optimizer, seed=seed)
        row = {**row, **extra, "machine_id": hardware["machine_id"],
               "torch": torch.__version__, "threads": torch.get_num_threads()}
        summaries.append(row)
        trajs.append(traj)
        if save:
            save(row, traj)
    summary = pd.DataFrame(summaries)
    return summary, (pd.concat(trajs, ignore_index=True) if trajs else pd.DataFrame())


def _failed(workload, optimizer: str, seed: int, device, exc: Exception) -> dict[str, Any]:
    """The summary row of a run whose optimizer raised (not a numeric divergence): status
    ``failed`` with the exception's first line, so the study goes on."""
    text = (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0][:300]
    return {"workload": workload.name, "optimizer": str(resolve(optimizer)), "seed": seed,
            "device": str(device), "status": "failed", "reason": text,
            "target_loss": workload.target_loss}


def run_many(workloads: Sequence[str], optimizers: Sequence[str], seeds: Sequence[int],
             **kwargs: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every (workload, optimizer, seed); see :func:`run_jobs`."""
    for o in optimizers:
        resolve(o)
    return run_jobs([(w, o, s, {}) for w in workloads for o in optimizers for s in seeds],
                    **kwargs)


def lr_grid(lo: float, hi: float, num: int) -> list[float]:
    """A log-spaced learning-rate grid from ``lo`` to ``hi`` (DeepOBS style)."""
    import numpy as np

    if not (0 < lo < hi < float("inf")) or isinstance(num, bool) or num < 2:
        raise UsageError(f"learning-rate grid needs 0 < lo < hi (finite) and at least 2 "
                         f"points, got {lo}:{hi}:{num}")
    return [float(v) for v in np.geomspace(lo, hi, num)]


def lr_jobs(workload: str, optimizers: Sequence[str], lrs: Sequence[float],
            seeds: Sequence[int]) -> list[Job]:
    """Each optimizer at every learning rate: jobs carrying ``base`` (the id without lr) and
    ``lr`` columns."""
    jobs = []
    for o in optimizers:
        oid = resolve(o).id
        base = str(OptimizerId(oid.name, tuple(kv for kv in oid.params if kv[0] != "lr")))
        for lr in lrs:
            jobs += [(workload, str(oid.with_params(lr=lr)), s, {"base": base, "lr": lr})
                     for s in seeds]
    return jobs


def _run_key(row: dict[str, Any]) -> tuple[str, str, int]:
    return str(row["workload"]), str(row["optimizer"]), int(row["seed"])


def _part(folder: RunFolder, kind: str, jobs: list[Job], traj_kind: str | None,
          **kw: Any) -> pd.DataFrame:
    """Run the jobs of one part of the study not stored yet, saving after each run."""
    rows = folder.rows(kind)
    done = {_run_key(r) for r in rows}
    trajs = [pd.DataFrame([t for t in folder.rows(traj_kind) if _run_key(t) in done])
             ] if traj_kind else []
    todo = [j for j in jobs if (j[0], str(resolve(j[1])), j[2]) not in done]

    def save(row: dict, traj: pd.DataFrame) -> None:
        # the trajectory first: the summary row marks the run done, so a kill between the two
        # writes re-runs it, and the orphan trajectory is dropped on resume (above)
        if traj_kind:
            trajs.append(traj)
            folder.write(traj_kind, pd.concat(trajs, ignore_index=True))
        rows.append(row)
        folder.write(kind, rows)

    run_jobs(todo, save=save, **kw)
    return pd.DataFrame(rows)


def converge_to_dir(out, *, workloads: Sequence[str], optimizers: Sequence[str],
                    seeds: Sequence[int], device: str = "cpu", budget: Budget = Budget(),
                    settings: RunSettings = RunSettings(), lr_values: Sequence[float] = (),
                    n_threads: int | None = None, resume: bool = False,
                    progress: bool = True) -> dict[str, pd.DataFrame]:
    """The ``mlpbench converge`` study: per-run tables written to ``out`` as runs finish.

    Tables: ``converge`` (one row per run) and ``trajectories``; with ``lr_values``
    ``lr_sensitivity`` (one row per run, with ``base`` and ``lr``). Aggregates are computed by
    :mod:`mlpbench.analysis.convergence`.
    """
    for w in workloads:
        if w not in WORKLOADS:
            raise UsageError(f"unknown workload {w!r}; choose from {', '.join(WORKLOADS)}")
    optimizers = [str(resolve(o)) for o in optimizers]
    if len(set(optimizers)) != len(optimizers) or len(set(workloads)) != len(workloads):
        raise UsageError("an optimizer or workload is listed twice")
    config = {"workloads": list(workloads), "optimizers": optimizers, "seeds": list(seeds),
              "device": device, "budget": asdict(budget), "settings": asdict(settings),
              "lr_values": list(lr_values), "threads": n_threads}
    kw = dict(device=device, budget=budget, settings=settings, progress=progress)
    tables: dict[str, pd.DataFrame] = {}
    with RunFolder(out, STUDY, resume=resume, config=config) as folder, threads(n_threads):
        folder.write_meta(KIND, {"hardware": describe_hardware(), "torch": torch.__version__})
        jobs = [(w, o, s, {}) for w in workloads for o in optimizers for s in seeds]
        tables["converge"] = _part(folder, "converge", jobs, "trajectories", **kw)
        if lr_values:
            jobs = [j for w in workloads for j in lr_jobs(w, optimizers, lr_values, seeds)]
            tables["lr_sensitivity"] = _part(folder, "lr_sensitivity", jobs, None, **kw)
    return tables


__all__ = ["DEFAULT_OPTIMIZERS", "Budget", "RunSettings", "converge_to_dir", "lr_grid",
           "lr_jobs", "run_jobs", "run_many"]
