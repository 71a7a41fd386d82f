"""Does SGD's noise help escape spurious minima? GD vs SGD on exact-capacity ReLU students.

Design: every initialisation seed is run by GD and by SGD at each batch size, at each
learning rate, on each problem, under two budget regimes:

* ``steps`` — every optimizer gets the same number of updates ``steps``;
* ``evals`` — every optimizer gets the same number of full-batch gradient evaluations
  ``evals`` (SGD at batch b takes ``evals · n / b`` steps).

One vectorised run per (problem, batch size) trains all (seed, η) pairs and is observed at
both budgets (a run stopped early ends the same under both). Each end point is polished in
fp64 and classified (:mod:`mlpbench.analysis.minima`). The study writes through the store's
contract (:class:`mlpbench.results.RunFolder`: lock, changed-configuration refusal on resume,
validated tables); rows are written atomically after every chunk of :data:`CHUNK` runs, and
a resume skips finished (problem, optimizer, budget, seed) rows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mlpbench.errors import UsageError
from mlpbench.problems.minima_workloads import MINIMA_PROBLEMS, make_minima_workload
from mlpbench.problems.runner import RunSettings
from mlpbench.results import RunFolder, Study
from mlpbench.studies.minima_classify import classify, end_point_class, polish_many
from mlpbench.studies.minima_engine import layer_shapes, train_many
from mlpbench.studies.minima_resolve import resolve_many

KEY = ["problem", "optimizer", "budget", "seed"]
INT_COLUMNS = ["seed", "batch", "step_limit", "steps", "dead_units"]
RUNS, SUMMARY, PAIRED, META = ("minima_runs.csv", "minima_summary.csv", "minima_paired.csv",
                               "minima.json")


@dataclass(frozen=True)
class MinimaConfig:
    """The experiment's grid (defaults: the committed run, ~30 min on 1 thread)."""

    problems: tuple[str, ...] = ("local_minima", "minima_deep")
    inits: int = 100  # initialisation seeds 0..inits-1, shared by every optimizer
    batch_sizes: tuple[int, ...] = (16, 64, 128)  # SGD minibatch sizes (n_train = 256)
    lrs: tuple[float, ...] = (0.1, 0.2)
    steps: int = 8_000  # the equal-steps budget
    evals: int = 2_000  # the equal-gradient-evaluations budget (full-batch equivalents)
    eval_every: int = 100  # steps between full-batch loss evaluations
    patience: int = 20  # evaluations (2,000 steps) without progress before 'converged'
    stall_tol: float = 1e-4
    polish_iter: int = 30  # Levenberg–Marquardt iterations of the fp64 polish (at most)
    #: end points the short polish leaves unresolved are polished further: fp64 L-BFGS-B
    #: for up to this many iterations, then Levenberg–Marquardt (0: keep the short polish)
    resolve_iter: int = 5000
    data_seed: int = 0

    def __post_init__(self) -> None:
        bad = [p for p in self.problems if p not in MINIMA_PROBLEMS]
        if bad:
            raise UsageError(f"unknown minima problem(s) {bad}; choose from "
                             f"{', '.join(MINIMA_PROBLEMS)}")
        if self.inits < 1 or not self.lrs or min(self.lrs) <= 0:
            raise UsageError("need at least one init and positive learning rates")
        if min(self.batch_sizes, default=1) < 1 or self.steps < 1 or self.evals < 1:
            raise UsageError("batch sizes and budgets must be positive")

    @property
    def settings(self) -> RunSettings:
        return RunSettings(eval_every=self.eval_every, patience=self.patience,
                           stall_tol=self.stall_tol)


def optimizer_id(batch: int | None, lr: float) -> str:
    """The optimizer grammar string: ``gd[lr=0.1]`` or ``sgd[lr=0.1,batch=16]``."""
    return f"gd[lr={lr:g}]" if batch is None else f"sgd[lr={lr:g},batch={batch}]"


def _round_up(v: float, every: int) -> int:
    return int(max(every, -(-int(np.ceil(v)) // every) * every))


def budgets_for(batch: int | None, n: int, cfg: MinimaConfig) -> dict[str, int]:
    """Step limits of the two budget regimes for one batch size (multiples of eval_every)."""
    per_step = 1.0 if batch is None else min(batch, n) / n  # gradient evals per step
    return {"steps": _round_up(cfg.steps, cfg.eval_every),
            "evals": _round_up(cfg.evals / per_step, cfg.eval_every)}


def _save_thetas(out_dir: Path, name: str, pairs, names, flat) -> None:
    """The unpolished end points of one chunk (fp32 values), so the polish can be redone."""
    d = out_dir / "end_points"
    d.mkdir(exist_ok=True)
    path = d / f"{name}.npz"
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    try:
        np.savez_compressed(tmp, theta=np.stack([sn.theta for sn in flat]).astype(np.float32),
                            seed=np.repeat([s for s, _ in pairs], len(names)),
                            lr=np.repeat([lr for _, lr in pairs], len(names)),
                            budget=np.array(names * len(pairs)))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _chunk_rows(problem: str, batch: int | None, cfg: MinimaConfig, pairs: list[tuple],
                todo: set[tuple], out_dir: Path) -> list[dict]:
    """Train, polish and classify one chunk of (seed, lr) runs of one (problem, batch)."""
    w = make_minima_workload(problem, seed=cfg.data_seed)
    limits = budgets_for(batch, w.n_train, cfg)
    names = list(limits)
    snaps = train_many(w, [s for s, _ in pairs], [lr for _, lr in pairs], batch,
                       [limits[b] for b in names], cfg.settings)
    flat = [sn for per in snaps for sn in per]
    _save_thetas(out_dir, f"{problem}_batch-{batch or 'full'}_seed-{pairs[0][0]}"
                 f"_lr-{pairs[0][1]:g}", pairs, names, flat)
    shapes = layer_shapes(w.make_model(0))
    polished = polish_many(w, np.stack([sn.theta for sn in flat]), shapes,
                           max_iter=cfg.polish_iter)
    stuck = [k for k, (p, sn) in enumerate(zip(polished, flat, strict=True))
             if sn.status != "diverged" and end_point_class(p) == "unresolved"]
    if stuck and cfg.resolve_iter:
        for k, p in zip(stuck, resolve_many(w, np.stack([flat[k].theta for k in stuck]),
                                            shapes, lbfgs_iter=cfg.resolve_iter), strict=True):
            polished[k] = p
    per_step = 1.0 if batch is None else min(batch, w.n_train) / w.n_train
    rows = []
    for k, sn in enumerate(flat):
        (seed, lr), budget = pairs[k // len(names)], names[k % len(names)]
        p = polished[k]
        rows.append({"problem": problem, "optimizer": optimizer_id(batch, lr),
                     "budget": budget, "seed": seed, "batch": batch or w.n_train, "lr": lr,
                     "step_limit": limits[budget], "run_status": sn.status,
                     "steps": sn.steps, "grad_evals": sn.steps * per_step,
                     "run_loss": sn.loss, "polished_loss": p.loss,
                     "grad_norm": p.grad_norm, "lambda_min": p.lambda_min,
                     "lambda_max": p.lambda_max, "displacement": p.displacement,
                     "dead_units": p.dead_units, "min_abs_preact": p.min_abs_preact,
                     "end_point": end_point_class(p),
                     "cls": classify(p, sn.status)})
    return [r for r in rows if tuple(r[c] for c in KEY) in todo]


def _todo_pairs(problem: str, batch: int | None, cfg: MinimaConfig,
                todo: set[tuple]) -> list[tuple[int, float]]:
    return [(s, lr) for lr in cfg.lrs for s in range(cfg.inits)
            if any((problem, optimizer_id(batch, lr), b, s) in todo for b in ("steps", "evals"))]


def all_keys(cfg: MinimaConfig) -> list[tuple]:
    """Every (problem, optimizer, budget, seed) row the experiment produces."""
    batches: list[int | None] = [None, *cfg.batch_sizes]
    return [(p, optimizer_id(b, lr), reg, s) for p in cfg.problems for b in batches
            for lr in cfg.lrs for reg in ("steps", "evals") for s in range(cfg.inits)]


#: the experiment as a study of the store's contract: rows written per chunk of runs
STUDY = Study("minima_runs", "chunk of runs", ("minima_runs", "minima_summary",
                                                "minima_paired"), meta="minima")
#: runs trained together (vectorised) and written together: a kill loses at most this many
CHUNK = 8


def run_study(out: str | os.PathLike, cfg: MinimaConfig = MinimaConfig(), *,
              resume: bool = False,
              log: Callable[[str], None] = lambda _m: None) -> pd.DataFrame:
    """Run (or, with ``resume``, finish) the experiment in ``out``; returns the per-run table.

    Runs are trained in chunks of :data:`CHUNK` (seed, lr) pairs per (problem, batch size);
    each chunk's rows are written atomically as soon as it is classified."""
    from mlpbench.devices import describe_hardware

    with RunFolder(out, STUDY, resume=resume, config=asdict(cfg)) as folder:
        stored = folder.rows()
        done = pd.DataFrame(stored) if stored else pd.DataFrame(columns=KEY)
        have = {(r["problem"], r["optimizer"], r["budget"], int(r["seed"])) for r in stored}
        todo = set(all_keys(cfg)) - have
        folder.write_meta(STUDY.meta_kind, {
            "hardware": describe_hardware(), "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "engine": "mlpbench.studies.minima_engine.train_many"})
        for problem in cfg.problems:
            for batch in [None, *cfg.batch_sizes]:
                pairs, new = _todo_pairs(problem, batch, cfg, todo), 0
                for i in range(0, len(pairs), CHUNK):
                    rows = _chunk_rows(problem, batch, cfg, pairs[i:i + CHUNK], todo,
                                       folder.path)
                    done = pd.concat([done, pd.DataFrame(rows)], ignore_index=True)
                    done = done.astype({c: int for c in INT_COLUMNS})
                    folder.write(STUDY.kind, done)
                    new += len(rows)
                log(f"{problem} batch={batch or 'full'}: {new} new rows")
        return done


def check_sizes(values: Sequence[int]) -> None:
    """Refuse non-positive sizes with a one-line message."""
    if any(v <= 0 for v in values):
        raise UsageError(f"sizes must be positive, got {list(values)}")


def runner_check(problem: str, optimizer: str, seeds: Sequence[int], budget: str,
                 cfg: MinimaConfig = MinimaConfig()) -> pd.DataFrame:
    """The same runs through :func:`mlpbench.convergence.run` (one at a time), polished and
    classified the same way: a cross-check of the vectorised engine on a subsample."""
    import dataclasses

    from mlpbench.optimizers import batch_size_of
    from mlpbench.problems.runner import Budget, run
    from mlpbench.studies.minima_classify import flat_of

    w = make_minima_workload(problem, seed=cfg.data_seed)
    limit = budgets_for(batch_size_of(optimizer), w.n_train, cfg)[budget]
    rows, models = [], []
    for seed in seeds:
        box: dict = {}
        wc = dataclasses.replace(w, make_model=lambda s, box=box: box.setdefault(
            "m", w.make_model(s)))
        res = run(wc, optimizer, seed=seed, budget=Budget(max_steps=limit, max_seconds=1e9),
                  settings=cfg.settings)
        rows.append({"problem": problem, "optimizer": optimizer, "budget": budget,
                     "seed": seed, "run_status": res.status, "steps": res.steps,
                     "run_loss": res.final_loss})
        models.append(flat_of(box["m"]))
    polished = polish_many(w, np.stack(models), layer_shapes(w.make_model(0)),
                           max_iter=cfg.polish_iter)
    for r, p in zip(rows, polished, strict=True):
        r.update(polished_loss=p.loss, end_point=end_point_class(p),
                 cls=classify(p, r["run_status"]))
    return pd.DataFrame(rows)
