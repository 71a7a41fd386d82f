"""What one step of a structured-curvature optimizer costs as P grows, against SGD and Adam.

For the Newton study's networks (d=10, two hidden layers of growing width, then the
10^7-parameter network d=100, n_h=1000, L=10) the study times one optimizer step (closure
included: forward, loss, backward, update) on one fixed batch, per method and *variant*:

``update``   the preconditioner is refreshed on every step (SOAP/KL-Shampoo
             ``precondition_frequency=1``, PSGD ``update_probability=1``, K-FAC
             ``update_every=1``);
``cheap``    it is never refreshed after the first step (the same keys set to 10^9, or
             PSGD's probability to 0);
``step``     methods without a preconditioner (SGD, Adam, Muon, Schedule-Free AdamW).

The amortised cost at the library's default k, the multiples of SGD and Adam steps and the
FLOP model of the factor eigendecompositions are computed from the stored table by
:mod:`mlpbench.analysis.curvature`. Every row also stores the memory model of the
optimizer state, the state the library actually allocated (its tensors counted), and the
host RSS peak over building the optimizer and its first steps.

Repeated steps use a learning rate of 1e-6, so the problem barely moves and stays finite
(the asv suite's convention); the cost of a step does not depend on its size.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
import torch

from mlpbench.devices import describe_hardware, resolve_device, synchronize, threads
from mlpbench.errors import UsageError
from mlpbench.measure.memory import guarded, host_peak
from mlpbench.measure.timing import Measurement, TimerConfig, measure
from mlpbench.models import build_torch
from mlpbench.optimizers import REGISTRY, make_optimizer, memory_model, resolve
from mlpbench.optimizers.base import Objective
from mlpbench.optimizers.curvature import state_tensor_elements
from mlpbench.optimizers.state_memory import factor_cubes
from mlpbench.problems.workloads import mse
from mlpbench.results import Study
from mlpbench.results.rows import run_rows
from mlpbench.spec import TARGET_SPEC, MLPSpec

KIND = "curvature_cost"
#: one row per (P, method, variant), written as each is timed
STUDY = Study(KIND, "operation", (KIND,))
NEVER = 10 ** 9  # "never refresh again": a frequency no timed run reaches
#: method -> variant -> the hyperparameters that force it (lr 1e-6: see the module doc)
VARIANTS: dict[str, dict[str, str]] = {
    "sgd": {"step": ""}, "adam": {"step": ""}, "muon": {"step": ""}, "sf_adamw": {"step": ""},
    "soap": {"update": "precondition_frequency=1", "cheap": f"precondition_frequency={NEVER}"},
    "kl_shampoo": {"update": "precondition_frequency=1",
                   "cheap": f"precondition_frequency={NEVER}"},
    "psgd_kron": {"update": "update_probability=1", "cheap": "update_probability=0"},
    "kfac": {"update": "update_every=1", "cheap": f"update_every={NEVER}"},
}
METHODS = tuple(VARIANTS)
DEFAULT_WIDTHS = (32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class CurvatureConfig:
    """The curvature cost grid and its limits."""

    widths: tuple[int, ...] = DEFAULT_WIDTHS  # d=10, L=2; P = w² + 13w + 1
    input_dim: int = 10
    depth: int = 2
    include_target: bool = True  # also d=100, n_h=1000, L=10 (P = 9,111,001)
    batch: int = 64
    methods: tuple[str, ...] = METHODS
    compile_widths: tuple[int, ...] = ()  # also time heavyball compiled at these widths
    device: str = "cpu"
    seed: int = 0
    threads: int | None = None
    slow_s: float = 1.0  # a step slower than this keeps one sample (the second call)
    timer: TimerConfig = field(default_factory=lambda: TimerConfig(
        warmup=2, min_samples=5, max_samples=30, budget_s=1.0))

    def __post_init__(self) -> None:
        for w in self.widths + self.compile_widths:
            if isinstance(w, bool) or not isinstance(w, int) or w <= 0:
                raise UsageError(f"widths: {w!r} is not a positive integer")
        for m in self.methods:
            if m not in VARIANTS:
                raise UsageError(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
        if self.batch <= 0:
            raise UsageError(f"batch must be positive, got {self.batch}")

    def specs(self) -> list[MLPSpec]:
        specs = [MLPSpec(self.input_dim, w, self.depth) for w in self.widths]
        if self.include_target:
            specs.append(TARGET_SPEC)
        return sorted(set(specs), key=lambda s: s.num_params)

    def points(self) -> list[tuple[MLPSpec, str, str, bool]]:
        """(spec, method, variant, compiled) in increasing P."""
        out = []
        for spec in self.specs():
            for method in self.methods:
                for variant in VARIANTS[method]:
                    out.append((spec, method, variant, False))
                    if spec.width in self.compile_widths and spec.depth == self.depth \
                            and REGISTRY[method].requires == "heavyball":
                        out.append((spec, method, variant, True))
        return out


def optimizer_text(method: str, variant: str, compiled: bool) -> str:
    """The registry identifier a point times."""
    extra = [VARIANTS[method][variant]] if VARIANTS[method][variant] else []
    if compiled:
        extra.append("compile=true")
    return f"{method}[{','.join(['lr=1e-06', *extra, 'batch=full'])}]"


def run_curvature_study(cfg: CurvatureConfig = CurvatureConfig(),
                        out: str | os.PathLike | None = None, *, resume: bool = False,
                        progress: bool = True) -> pd.DataFrame:
    """Time every (network, method, variant); one row each, written as it finishes."""
    device = resolve_device(cfg.device)
    meta = {"hardware": describe_hardware(), "torch": torch.__version__}
    return pd.DataFrame(run_rows(out, STUDY, asdict(cfg), lambda stored, save: _rows(
        cfg, device, stored, save, progress), resume=resume, meta=meta))


def _rows(cfg: CurvatureConfig, device, rows: list[dict], save, progress: bool) -> list[dict]:
    from tqdm.auto import tqdm

    done = {(int(r["params"]), r["method"], r["variant"], bool(r["compiled"])) for r in rows}
    points = cfg.points()
    with threads(cfg.threads) as n_threads:
        for spec, method, variant, compiled in tqdm(points, desc="curvature-cost", unit="op",
                                                    disable=not progress):
            if (spec.num_params, method, variant, compiled) in done:
                continue
            text = optimizer_text(method, variant, compiled)
            row = {"params": spec.num_params, "input_dim": spec.input_dim,
                   "width": spec.width, "depth": spec.depth, "method": method,
                   "variant": variant, "compiled": compiled, "optimizer": text,
                   "batch": cfg.batch, "device": device.type, "threads": n_threads,
                   "seed": cfg.seed, "torch": torch.__version__, **_model_columns(spec, text),
                   "status": "ok", "reason": ""}
            row.update(_measure_point(spec, text, cfg, device))
            rows.append(row)
            save(rows)
    return rows


def _model_columns(spec: MLPSpec, text: str) -> dict[str, Any]:
    res = resolve(text)
    mem = memory_model(spec, res, "fp32", 1)
    max_dim = int(res.hp.get("max_precond_dim", res.hp.get("max_size_triangular", 0)) or 0)
    return {"state_model_bytes": mem.optimizer_state, "training_model_bytes": mem.training,
            "factor_cubes": factor_cubes(spec, max_dim) if res.definition.update_every else 0}


def _measure_point(spec: MLPSpec, text: str, cfg: CurvatureConfig, device) -> dict[str, Any]:
    reason = resolve(text).definition.skip_reason()
    if reason:
        return {"status": "skipped", "reason": reason}
    model = build_torch(spec, seed=cfg.seed, device=device)
    gen = torch.Generator().manual_seed(cfg.seed)
    x = torch.randn(cfg.batch, spec.input_dim, generator=gen).to(device)
    y = torch.randn(cfg.batch, spec.output_dim, generator=gen).to(device)
    objective = Objective(model, x, y, mse)
    with guarded(device) as outcome:
        with host_peak() as rss:
            opt = make_optimizer(text, model)
            first = _timed(lambda: opt.step(objective), device)  # builds the state
            _timed(lambda: opt.step(objective), device)
        m = _measure_step(lambda: opt.step(objective), device, cfg)
        counted = state_tensor_elements(opt) * 4
    if not outcome.ok:
        return outcome.as_row()
    return {**m.as_dict(), "first_call_s": first, "state_counted_bytes": counted,
            "rss_peak_bytes": rss[0]}


def rss_point(spec: MLPSpec, text: str, *, steps: int = 3, batch: int = 64,
              seed: int = 0) -> dict[str, Any]:
    """Host RSS peak above the RSS after building the model and its batch, over building
    the optimizer ``text`` and ``steps`` steps: run it in a fresh process (the high-water mark
    is per process, and memory freed by earlier work would be reused unseen)."""
    model = build_torch(spec, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(batch, spec.input_dim, generator=gen), torch.randn(batch, 1, generator=gen)
    objective = Objective(model, x, y, mse)
    with host_peak() as rss:
        opt = make_optimizer(text, model)
        for _ in range(steps):
            opt.step(objective)
    mem = memory_model(spec, text, "fp32", batch)
    return {"params": spec.num_params, "optimizer": text, "batch": batch, "steps": steps,
            "rss_peak_bytes": rss[0], "state_model_bytes": mem.optimizer_state,
            "state_counted_bytes": state_tensor_elements(opt) * 4,
            "model_less_params_bytes": mem.training - mem.params}


def _timed(fn, device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def _measure_step(fn, device, cfg: CurvatureConfig) -> Measurement:
    """A step slower than ``slow_s`` keeps one sample (a third call: the first two built the
    state and warmed the kernels); faster ones go through :func:`measure`."""
    third = _timed(fn, device)
    if third > cfg.slow_s:
        return Measurement(times=(third,), warnings=("single sample (slow step)",))
    return measure(fn, device=device, config=cfg.timer)


__all__ = ["DEFAULT_WIDTHS", "KIND", "METHODS", "VARIANTS", "CurvatureConfig",
           "optimizer_text", "rss_point", "run_curvature_study"]
