"""What a Newton step costs as P grows, measured against first-order steps.

For a grid of MLPs (d=10, two hidden layers of growing width, then the 10^7-parameter
network d=100, n_h=1000, L=10) the study times, on one batch, each operation in
:data:`OPERATIONS` and records its peak memory. Points are visited in increasing P; an
operation is skipped without being attempted when

* its memory model exceeds the device's usable memory (reason: predicted bytes), or
* the power law fitted to its smaller points predicts more than ``max_op_seconds``.

From the measurements: fitted scaling exponents (log time against log P), HVP/gradient
cost ratios, the Newton wall (the largest P whose Hessian and factor fit: predicted from
the memory model and measured on the grid), and the fitted laws extrapolated to
P = 9,111,001, labelled as an extrapolation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from mlpbench.devices import (
    describe_hardware,
    device_memory_bytes,
    device_skip_reason,
    resolve_device,
    set_threads,
    synchronize,
)
from mlpbench.errors import UsageError
from mlpbench.memory import cuda_peak, host_peak, is_oom, release
from mlpbench.models import build_torch
from mlpbench.optimizers.newton import Newton, NewtonCG, newton_bytes, require_newton_fits
from mlpbench.second_order import flat_loss, gradient, hessian_vmap, hvp_fwdrev, hvp_revrev
from mlpbench.spec import MLPSpec
from mlpbench.summary import format_bytes
from mlpbench.timing import TimerConfig, measure
from mlpbench.workloads import mse

OPERATIONS = ("grad", "hvp_fwdrev", "hvp_revrev", "hessian", "solve", "newton_step",
              "newton_cg_step", "sgd_step", "adam_step")
#: the network the study extrapolates to
TARGET_SPEC = MLPSpec(100, 1000, 10)
DEFAULT_WIDTHS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)


@dataclass(frozen=True)
class CostConfig:
    """The cost-study grid and its limits."""

    widths: tuple[int, ...] = DEFAULT_WIDTHS  # d=10, L=2; P = w² + 13w + 1
    input_dim: int = 10
    depth: int = 2
    include_target: bool = True  # also the 10^7 network (first-order operations only fit)
    batch: int = 64
    cg_iters: int = 10
    device: str = "cpu"
    seed: int = 0
    threads: int | None = None
    memory_fraction: float = 0.8  # usable share of device memory
    max_op_seconds: float = 60.0  # skip an operation predicted (by its fit) to take longer
    timer: TimerConfig = field(default_factory=lambda: TimerConfig(
        warmup=1, min_samples=3, max_samples=20, budget_s=0.5))
    hessian_chunk: int | None = None  # vmap chunk; None: sized from the memory budget
    operations: tuple[str, ...] = OPERATIONS
    networks: tuple[MLPSpec, ...] = ()  # explicit networks instead of the width grid

    def __post_init__(self) -> None:
        for w in self.widths:
            if isinstance(w, bool) or not isinstance(w, int) or w <= 0:
                raise UsageError(f"widths: {w!r} is not a positive integer")
        for op in self.operations:
            if op not in OPERATIONS:
                raise UsageError(f"unknown operation {op!r}; choose from {', '.join(OPERATIONS)}")
        if self.batch <= 0 or self.cg_iters <= 0 or self.max_op_seconds <= 0:
            raise UsageError("batch, cg_iters and max_op_seconds must be positive")
        if not 0 < self.memory_fraction <= 1:
            raise UsageError(f"memory_fraction must be in (0, 1], got {self.memory_fraction}")

    def specs(self) -> list[MLPSpec]:
        if self.networks:
            specs = list(self.networks)
        else:
            specs = [MLPSpec(self.input_dim, w, self.depth) for w in self.widths]
            if self.include_target:
                specs.append(TARGET_SPEC)
        return sorted(set(specs), key=lambda s: s.num_params)


def predicted_op_bytes(spec: MLPSpec, op: str, batch: int, element: int = 4) -> int:
    """Memory model of one operation (parameters, activations, dense matrices)."""
    p = spec.num_params
    mem = spec.memory("fp32", batch, "adam")
    base = mem.params + mem.grads + mem.activations
    if op in ("grad", "sgd_step"):
        return base
    if op == "adam_step":
        return mem.training
    if op in ("hvp_fwdrev", "hvp_revrev", "newton_cg_step"):
        return 2 * base + 6 * p * element  # dual numbers double the graph; CG vectors
    if op == "hessian":
        return p * p * element + base
    if op == "solve":
        return newton_bytes(p, element)
    if op == "newton_step":
        return newton_bytes(p, element) + base
    raise UsageError(f"unknown operation {op!r}")


def operation_callable(op: str, spec: MLPSpec, model, x, y, cfg: CostConfig,
               state: dict[str, Any]) -> Callable[[], Any]:
    """A callable performing one ``op`` on the model and batch."""
    f, theta = flat_loss(model, mse, x, y)
    v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(1)).to(theta)
    if op == "grad":
        return lambda: gradient(f, theta)
    if op == "hvp_fwdrev":
        return lambda: hvp_fwdrev(f, theta, v)
    if op == "hvp_revrev":
        return lambda: hvp_revrev(f, theta, v)
    if op == "hessian":
        return lambda: hessian_vmap(f, theta, chunk_size=state.get("chunk"))
    if op == "solve":
        h = hessian_vmap(f, theta, chunk_size=state.get("chunk"))
        h = h + 1e-3 * torch.eye(h.shape[0], dtype=h.dtype, device=h.device)
        g = gradient(f, theta).unsqueeze(1)
        return lambda: torch.linalg.solve(h, g)
    from mlpbench.optimizers import make_optimizer
    from mlpbench.optimizers.base import Objective

    obj = Objective(model, x, y, mse)
    if op == "newton_step":
        opt = Newton(model, damping=1e-3, line_search=False)
    elif op == "newton_cg_step":
        opt = NewtonCG(model, cg_iters=cfg.cg_iters, cg_tol=0.0, line_search=False)
    else:
        opt = make_optimizer("sgd[lr=1e-6,batch=full]" if op == "sgd_step"
                             else "adam[lr=1e-6,batch=full]", model)
    return lambda: opt.step(obj)


def _hessian_chunk(spec: MLPSpec, cfg: CostConfig, usable: int) -> int:
    """HVPs per vmap chunk: the batch of dual activations may use a quarter of the free
    memory left after the Hessian itself."""
    p = spec.num_params
    per_hvp = 6 * cfg.batch * spec.activation_elements() * 4 + 3 * p * 4
    spare = max(usable - p * p * 4, usable // 8) // 4
    return int(max(1, min(p, spare // max(per_hvp, 1))))


def _fit(points: list[tuple[int, float]]):
    """Least-squares power law on the largest points: ``(exponent, intercept, r², n)``."""
    from scipy import stats  # imported here: it costs asv's spawned benchmarks 0.5 s

    pts = sorted(points)[-4:]
    if len(pts) < 2:
        return None
    res = stats.linregress(np.log([p for p, _ in pts]), np.log([t for _, t in pts]))
    return res.slope, res.intercept, res.rvalue**2, len(pts)


def _predict(fit, p: int) -> float:
    return float(math.exp(fit[1] + fit[0] * math.log(p)))


def run_cost_study(cfg: CostConfig = CostConfig(), *, progress: bool = True) -> pd.DataFrame:
    """Measure every operation at every grid point; one row per (P, operation)."""
    from tqdm.auto import tqdm

    device = resolve_device(cfg.device)
    reason = device_skip_reason(device)
    if reason:
        raise UsageError(f"cannot run the cost study on {cfg.device}: {reason}")
    threads = set_threads(cfg.threads)
    usable = int(device_memory_bytes(device) * cfg.memory_fraction)
    done: dict[str, list[tuple[int, float]]] = {op: [] for op in cfg.operations}
    rows = []
    specs = cfg.specs()
    with tqdm(total=len(specs) * len(cfg.operations), desc="newton-cost", unit="op",
              disable=not progress) as bar:
        for spec in specs:
            p = spec.num_params
            gen = torch.Generator().manual_seed(cfg.seed)
            x = torch.randn(cfg.batch, spec.input_dim, generator=gen).to(device)
            y = torch.randn(cfg.batch, spec.output_dim, generator=gen).to(device)
            state = {"chunk": cfg.hessian_chunk or _hessian_chunk(spec, cfg, usable)}
            for op in cfg.operations:
                bar.set_postfix_str(f"P={p:,} {op}")
                row = {"params": p, "width": spec.width, "depth": spec.depth,
                       "input_dim": spec.input_dim, "op": op, "batch": cfg.batch,
                       "device": device.type, "threads": threads, "seed": cfg.seed,
                       "predicted_bytes": predicted_op_bytes(spec, op, cfg.batch),
                       "status": "ok", "reason": ""}
                row.update(_run_op(op, spec, x, y, cfg, state, usable, done, device))
                if row["status"] == "ok":
                    done[op].append((p, row["median_s"]))
                rows.append(row)
                bar.update()
    return pd.DataFrame(rows)


def _run_op(op, spec, x, y, cfg, state, usable, done, device) -> dict[str, Any]:
    p = spec.num_params
    need = predicted_op_bytes(spec, op, cfg.batch)
    if need > usable:
        return {"status": "skipped", "reason": f"would need {format_bytes(need)} (memory model) "
                f"> {format_bytes(usable)} usable"}
    fit = _fit(done[op])
    if fit is not None and _predict(fit, p) > cfg.max_op_seconds:
        return {"status": "skipped", "reason": f"predicted {_predict(fit, p):.0f} s per call "
                f"(fitted P^{fit[0]:.2f}) > {cfg.max_op_seconds:g} s limit"}
    model = build_torch(spec, seed=cfg.seed, device=device)
    try:
        with cuda_peak(device) as cbox, host_peak() as hbox:
            fn = operation_callable(op, spec, model, x, y, cfg, state)
            m = _measure_op(fn, device, cfg)
    except Exception as exc:  # noqa: BLE001 - OOM is a result; anything else is 'failed'
        release(device)
        return {"status": "oom" if is_oom(exc) else "failed",
                "reason": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
    out = {**m.as_dict(), "host_peak_bytes": hbox[0]}
    if cbox[0] is not None:
        out.update(cuda_peak_allocated=cbox[0].allocated, cuda_peak_reserved=cbox[0].reserved)
    return out


def _measure_op(fn, device, cfg: CostConfig):
    """One untimed-free probe; slow operations (> 1 s) keep that single sample."""
    from mlpbench.timing import Measurement

    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    probe = time.perf_counter() - start
    if probe > 1.0:
        return Measurement(times=(probe,), warnings=("single sample (slow operation)",))
    return measure(fn, device=device, config=cfg.timer)


def analyse(frame: pd.DataFrame, cfg: CostConfig = CostConfig()) -> dict[str, Any]:
    """Fits, HVP/gradient ratios, the Newton wall and the extrapolation to 10^7."""
    ok = frame[frame["status"] == "ok"]
    fits = []
    for op, g in ok.groupby("op"):
        fit = _fit(list(zip(g["params"], g["median_s"], strict=True)))
        if fit:
            fits.append({"op": op, "exponent": fit[0], "log_intercept": fit[1], "r2": fit[2],
                         "points": fit[3], "p_min": int(sorted(g["params"])[-fit[3]]),
                         "p_max": int(g["params"].max())})
    fit_frame = pd.DataFrame(fits)
    times = ok.pivot_table(index="params", columns="op", values="median_s")
    ratios = pd.DataFrame(index=times.index)
    for mode in ("hvp_fwdrev", "hvp_revrev"):
        if mode in times and "grad" in times:
            ratios[f"{mode}/grad"] = times[mode] / times["grad"]
    device = resolve_device(cfg.device)
    usable = int(device_memory_bytes(device) * cfg.memory_fraction)
    wall_pred = int(math.isqrt(usable // 8))  # 2·P²·4 bytes ≤ usable
    newton_ok = ok[ok["op"] == "newton_step"]["params"]
    newton_not = frame[(frame["op"] == "newton_step") & (frame["status"] != "ok")]
    p_target = TARGET_SPEC.num_params
    extrap: dict[str, Any] = {"params": p_target, "label": "extrapolation from fitted power laws",
                              "newton_bytes": newton_bytes(p_target)}
    by_op = {r["op"]: (r["exponent"], r["log_intercept"]) for r in fits}
    for op in OPERATIONS:
        if op in by_op:
            extrap[f"{op}_s"] = _predict(by_op[op], p_target)
    if "hessian" in by_op and "solve" in by_op:
        extrap["newton_step_from_parts_s"] = extrap["hessian_s"] + extrap["solve_s"]
    measured_target = ok[ok["params"] == p_target].set_index("op")["median_s"].to_dict()
    return {
        "fits": fit_frame, "ratios": ratios.reset_index(),
        "wall": {"predicted_params": wall_pred, "usable_bytes": usable,
                 "measured_max_params": int(newton_ok.max()) if len(newton_ok) else None,
                 "first_not_run": (newton_not.sort_values("params").iloc[0][
                     ["params", "status", "reason"]].to_dict() if len(newton_not) else None)},
        "extrapolation": extrap, "measured_at_target": measured_target,
    }


def report_text(analysis: dict[str, Any]) -> str:
    """Plain-text summary of :func:`analyse`."""
    lines = ["scaling exponents (time ~ P^k, least squares on the largest measured points):"]
    for _, r in analysis["fits"].iterrows():
        lines.append(f"  {r['op']:<15} k = {r['exponent']:.2f}  (r² {r['r2']:.3f}, "
                     f"{int(r['points'])} points, P {r['p_min']:,}..{r['p_max']:,})")
    ratios = analysis["ratios"]
    if len(ratios):
        lines.append("HVP / gradient time (measured):")
        for _, r in ratios.iterrows():
            parts = [f"{c} {r[c]:.2f}" for c in ratios.columns if c != "params"
                     and not pd.isna(r[c])]
            lines.append(f"  P={int(r['params']):>10,}: " + ", ".join(parts))
    w = analysis["wall"]
    lines.append(f"Newton wall: predicted P <= {w['predicted_params']:,} (Hessian + factor in "
                 f"{format_bytes(w['usable_bytes'])}); largest measured Newton step: "
                 f"P = {w['measured_max_params'] or 0:,}")
    if w["first_not_run"]:
        f = w["first_not_run"]
        lines.append(f"  first Newton step not run: P = {int(f['params']):,} ({f['status']}: "
                     f"{f['reason']})")
    e = analysis["extrapolation"]
    lines.append(f"P = {e['params']:,} ({e['label']}):")
    lines.append(f"  Newton step memory {format_bytes(e['newton_bytes'])}")
    for key in ("hessian_s", "solve_s", "newton_step_from_parts_s", "grad_s", "sgd_step_s"):
        if key in e:
            lines.append(f"  {key[:-2]:<24} {_human_seconds(e[key])}")
    for op, t in analysis["measured_at_target"].items():
        lines.append(f"  measured {op:<15} {_human_seconds(t)}")
    return "\n".join(lines)


def _human_seconds(s: float) -> str:
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("hours", 3600),
                       ("min", 60)):
        if s >= size:
            return f"{s / size:,.1f} {unit} ({s:.3g} s)"
    return f"{s:.3g} s"


#: the operations each ``--method`` of ``mlpbench newton-cost`` measures
METHOD_OPERATIONS = {
    "newton": ("grad", "hessian", "solve", "newton_step"),
    "newton_cg": ("grad", "hvp_fwdrev", "hvp_revrev", "newton_cg_step"),
    "first_order": ("grad", "sgd_step", "adam_step"),
}


def cost_to_dir(out, cfg: CostConfig, *, progress: bool = True, per_cost: bool = False,
                refuse: bool = False) -> dict[str, Any]:
    """The ``mlpbench newton-cost`` job: measure, analyse, write tables and metadata.

    With ``refuse``, a Newton request on a network whose Hessian cannot fit is refused
    before anything runs (an explicit request, unlike a sweep, where it is a skip).
    With ``per_cost``, also :func:`convergence_per_cost` (table ``newton_convergence``).
    """
    from mlpbench.results import prepare_out, write_meta, write_table

    if refuse and "newton_step" in cfg.operations:
        for spec in cfg.specs():
            refuse_newton(spec, cfg.device, cfg.memory_fraction)
    path = prepare_out(out, "newton_cost.csv")
    frame = run_cost_study(cfg, progress=progress)
    analysis = analyse(frame, cfg)
    write_table(path, "newton_cost", frame)
    write_table(path, "newton_fit", analysis["fits"])
    if per_cost:
        per, verdict = convergence_per_cost(progress=progress)
        write_table(path, "newton_convergence", per)
        analysis.update(per_cost=per, per_cost_verdict=verdict)
    write_meta(path, "newton_cost", {
        "hardware": describe_hardware(), "torch": torch.__version__, "config": asdict(cfg),
        "wall": analysis["wall"], "extrapolation": analysis["extrapolation"],
        "measured_at_target": analysis["measured_at_target"],
        "ratios": analysis["ratios"].to_dict("records"),
        "per_cost_verdict": analysis.get("per_cost_verdict")})
    return {"frame": frame, **analysis}


def refuse_newton(spec: MLPSpec, device: str = "cpu", fraction: float = 1.0) -> None:
    """Refuse up front a Newton run on ``spec`` that cannot fit (the memory model decides)."""
    require_newton_fits(spec.num_params,
                        int(device_memory_bytes(resolve_device(device)) * fraction))


__all__ = ["OPERATIONS", "CostConfig", "analyse", "cost_to_dir", "predicted_op_bytes",
           "refuse_newton", "report_text", "run_cost_study"]


PER_COST_OPTIMIZERS = ("newton", "newton_cg[cg_iters=20]", "lbfgs", "gd[lr=0.1]",
                       "sgd[lr=0.05,batch=32]", "adam[lr=0.01,batch=32]")


def hvp_grad_ratio(workload, seed: int = 0) -> float:
    """Measured time of one forward-over-reverse HVP over one gradient, full batch."""
    model = workload.make_model(seed)
    f, theta = flat_loss(model, workload.loss_fn, workload.x_train, workload.y_train)
    v = torch.ones_like(theta)
    cfg = TimerConfig(budget_s=0.2)
    t_grad = measure(lambda: gradient(f, theta), config=cfg).median
    t_hvp = measure(lambda: hvp_fwdrev(f, theta, v), config=cfg).median
    return t_hvp / t_grad


def convergence_per_cost(widths: Sequence[int] = (4, 8, 16, 32, 64), seeds: int = 3,
                         optimizers: Sequence[str] = PER_COST_OPTIMIZERS,
                         budget=None, progress: bool = False) -> tuple[pd.DataFrame, dict]:
    """Newton, Newton-CG, L-BFGS, GD, SGD and Adam to the same target on teacher–student
    problems of growing student width.

    Cost is reported three ways: steps, optimizer wall time, and gradient-equivalents =
    gradient evaluations + r · HVP evaluations, with r the HVP/gradient time ratio measured
    on that problem (never assumed). Returns the per-(width, optimizer) table and
    ``{"newton_loses_from_params": P or None}``: the smallest P at which exact Newton's
    median time to target exceeds the best first-order method's (or Newton misses it).
    """
    from mlpbench.convergence import Budget, run
    from mlpbench.workloads import teacher

    budget = budget or Budget(max_steps=3000, max_seconds=20)
    rows = []
    for w in widths:
        wl = teacher(teacher_width=4, student_width=w)
        ratio = hvp_grad_ratio(wl)
        p = wl.spec.num_params
        for opt in optimizers:
            for seed in range(seeds):
                res = run(wl, opt, seed=seed, budget=budget)
                hvp = float(res.trajectory["hvp_evals"].iloc[-1])
                rows.append({**res.summary(), "width": w, "params": p, "hvp_ratio": ratio,
                             "hvp_evals": hvp, "grad_equiv": res.grad_evals + ratio * hvp})
    runs = pd.DataFrame(rows)
    runs["grad_equiv_to_target"] = runs["grad_equiv"].where(runs["status"] == "target")
    per = runs.groupby(["params", "optimizer"]).agg(
        width=("width", "first"), hvp_ratio=("hvp_ratio", "first"),
        success=("status", lambda s: (s == "target").mean()),
        steps=("steps_to_target", "median"), time_s=("time_to_target", "median"),
        grad_equiv=("grad_equiv_to_target", "median"),
        final_loss=("final_loss", "median")).reset_index()
    loses = None
    for p, g in per.groupby("params"):
        newton = g[g["optimizer"] == "newton"]
        first = g[~g["optimizer"].str.startswith("newton")]
        best_first = first["time_s"].min()
        if newton.empty:
            continue
        t_newton = newton["time_s"].iloc[0]
        if math.isnan(t_newton) or (not math.isnan(best_first) and t_newton > best_first):
            loses = int(p)
            break
    return per, {"newton_loses_from_params": loses}
