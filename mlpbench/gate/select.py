"""The gate's default benchmark sets, derived from BASE's suite and the optimizer registry.

No benchmark id is written here: the suite is enumerated (``{"op": "list"}`` of BASE's
worker, :func:`mlpbench.measure.asv_suite.enumerate_ids`) and ids are picked by rule:

* every phase (:data:`PHASE_BENCHES`) at its smallest CPU point;
* every optimizer of :data:`mlpbench.optimizers.REGISTRY`, through the first benchmark of
  :data:`OPTIMIZER_BENCHES` that has it, at its smallest CPU point: a new optimizer is gated
  as soon as the suite benchmarks it, without an edit here;
* a phase or optimizer point whose call takes more than ``insn_max_call_s`` on BASE goes to
  the wall tier instead of the instruction-count tier (callgrind runs ~50-100x slower);
* the exact tier: the convergence counters of every optimizer on the ``teacher`` workload.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mlpbench.optimizers import REGISTRY

#: what each phase of a training run is measured by (asv ``Class.method``)
PHASE_BENCHES = {"infer": "ForwardBackward.time_infer", "forward": "ForwardBackward.time_forward",
                 "backward": "ForwardBackward.time_forward_backward",
                 "train step": "TrainStep.time_step"}
#: benchmarks of one optimizer step, in order of preference: (method, parameter, value form)
OPTIMIZER_BENCHES = (("NewtonCost.time_op", "op", "{}_step"),
                     ("OptimizerStep.time_step", "optimizer", "{}"))
#: the wall tier's own points: the SGD training step at its two smallest widths (L=2, B=32:
#: the 64-wide point is overhead-bound, the next width compute-bound)
WALL_BENCH, WALL_POINTS, WALL_AT = "TrainStep.time_step", 2, {"depth": 2, "batch": 32}
#: the exact tier: seeded convergence counters on this workload
EXACT_BENCHES = ("Convergence.track_steps_to_target", "Convergence.track_grad_evals_to_target")
EXACT_WORKLOAD = "teacher"


@dataclass(frozen=True)
class Plan:
    """Benchmark ids per tier, with what each gated id stands for and what is not gated."""

    insn: tuple[str, ...]
    wall: tuple[str, ...]
    exact: tuple[str, ...]
    covers: dict[str, str]  # id -> "phase infer", "optimizer adam", ...
    uncovered: tuple[str, ...]  # registry optimizers no benchmark of the suite exercises


def _size(row: dict) -> tuple:
    nums = [v for v in row["params"].values() if isinstance(v, (int, float))]
    return (math.prod(nums), tuple(nums))


def points(rows: Sequence[dict], bench: str, **fixed) -> list[dict]:
    """Rows of ``Class.method`` on CPU with the given parameter values, smallest first."""
    cls, method = bench.split(".")
    fixed = {"device": "cpu", **fixed}
    found = [r for r in rows if r["class"] == cls and r["method"] == method
             and all(r["params"].get(k, v) == v for k, v in fixed.items())]
    return sorted(found, key=_size)


def candidates(rows: Sequence[dict]) -> tuple[dict[str, str], tuple[str, ...]]:
    """Phase and optimizer points: ``{id: what}``, and the optimizers no benchmark covers."""
    covers, uncovered = {}, []
    for phase, bench in PHASE_BENCHES.items():
        found = points(rows, bench)
        if found:
            covers[found[0]["id"]] = f"phase {phase}"
    for name in REGISTRY:
        for bench, param, form in OPTIMIZER_BENCHES:
            found = points(rows, bench, **{param: form.format(name)})
            if found:
                covers.setdefault(found[0]["id"], f"optimizer {name}")
                break
        else:
            uncovered.append(name)
    return covers, tuple(uncovered)


def exact_ids(rows: Sequence[dict]) -> tuple[str, ...]:
    return tuple(r["id"] for b in EXACT_BENCHES for r in points(rows, b, workload=EXACT_WORKLOAD))


def plan(rows: Sequence[dict], call_seconds: dict[str, float | None],
         insn_max_call_s: float) -> Plan:
    """Split the candidates between the tiers by BASE's seconds per call (None: BASE could
    not run it; it then stays in the insn tier, where it is reported)."""
    covers, uncovered = candidates(rows)
    slow = {b for b, s in call_seconds.items() if s is not None and s > insn_max_call_s}
    wall = [r["id"] for r in points(rows, WALL_BENCH, **WALL_AT)[:WALL_POINTS]]
    wall += [b for b in covers if b in slow and b not in wall]
    insn = [b for b in covers if b not in slow]
    return Plan(tuple(insn), tuple(wall), exact_ids(rows), covers, uncovered)
