"""Hardware sweeps: every phase over device × dtype × framework × d × width × depth × batch.

Each grid point runs in a fresh process (``spawn``), for two reasons: the host peak-RSS
high-water mark then belongs to that point alone, and a point that kills its process (the
kernel's OOM killer, a crash in a library) is recorded as failed while the sweep goes on.
Points whose predicted memory exceeds the device are recorded as skipped, not attempted.
Results are rewritten atomically after every point, so an interrupted sweep loses at most
the point in flight, and ``resume=True`` continues where it stopped.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import pandas as pd
import torch

from mlpbench.devices import (
    MEMORY_FRACTION,
    describe_hardware,
    device_skip_reason,
    resolve_device,
    threads,
)
from mlpbench.errors import UsageError
from mlpbench.measure.isolation import Isolated
from mlpbench.measure.memory import (
    cuda_peak,
    guarded,
    host_peak_rss_bytes,
    host_rss_bytes,
    over_budget,
)
from mlpbench.measure.peak import get_peak
from mlpbench.measure.timing import TimerConfig, measure
from mlpbench.point import Point, key_of
from mlpbench.problems.phases import (
    FRAMEWORKS,
    KERAS_PHASES,
    PHASES,
    make_bench,
    phase_callable,
    phase_flops,
    predicted_bytes,
)
from mlpbench.results import RunFolder
from mlpbench.spec import MLPSpec

SWEEP_DTYPES = ("fp32", "bf16")
KIND = "sweep"


@dataclass(frozen=True)
class SweepConfig:
    """A sweep grid and how to measure it (every field is recorded with the results)."""

    devices: tuple[str, ...] = ("cpu",)
    dtypes: tuple[str, ...] = ("fp32",)
    frameworks: tuple[str, ...] = ("torch",)
    input_dims: tuple[int, ...] = (100,)
    widths: tuple[int, ...] = (256,)
    depths: tuple[int, ...] = (2,)
    batches: tuple[int, ...] = (256,)
    phases: tuple[str, ...] = PHASES
    activation: str = "relu"
    threads: int | None = None  # torch intra-op threads; None keeps torch's default
    seed: int = 0
    timer: TimerConfig = field(default_factory=lambda: TimerConfig(budget_s=0.5))
    memory_fraction: float = MEMORY_FRACTION  # a point may plan to use this share of memory
    isolate: bool = True  # fresh process per point (exact host peak RSS, crash isolation)

    def __post_init__(self) -> None:
        _check_choices("device", self.devices, ("cpu", "cuda"))
        for d in self.devices:
            resolve_device(d)
        _check_choices("dtype", self.dtypes, SWEEP_DTYPES)
        _check_choices("framework", self.frameworks, FRAMEWORKS)
        _check_choices("phase", self.phases, PHASES)
        for name in ("input_dims", "widths", "depths", "batches"):
            values = getattr(self, name)
            if not values:
                raise UsageError(f"{name}: at least one value is needed")
            for v in values:
                if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                    raise UsageError(f"{name}: {v!r} is not a positive integer")
        MLPSpec(1, 1, 1, activation=self.activation)
        if self.threads is not None and (isinstance(self.threads, bool)
                                         or not isinstance(self.threads, int) or self.threads <= 0):
            raise UsageError(f"threads must be a positive integer, got {self.threads!r}")
        for name in ("devices", "dtypes", "frameworks", "input_dims", "widths", "depths",
                     "batches", "phases"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise UsageError(f"{name}: {', '.join(map(str, values))} repeats a value")
        if not 0 < self.memory_fraction <= 1:  # also false for NaN
            raise UsageError(f"memory_fraction must be in (0, 1], got {self.memory_fraction}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_choices(what: str, values: Iterable[str], allowed: tuple[str, ...]) -> None:
    values = tuple(values)
    if not values:
        raise UsageError(f"at least one {what} is needed")
    for v in values:
        base = v.split(":", 1)[0] if what == "device" else v
        if base not in allowed:
            raise UsageError(f"unknown {what} {v!r}; choose from {', '.join(allowed)}")


#: ``quick`` is a smoke test (< 2 min on 2 cores); ``default`` is the main job's grid;
#: ``full`` reaches past 10^7 parameters, including d=100, n_h=1000, L=10 (P = 9,111,001).
PRESETS: dict[str, dict[str, Any]] = {
    "quick": dict(devices=("cpu", "cuda"), input_dims=(100,), widths=(128, 512, 1024),
                  depths=(2, 4), batches=(256,),
                  timer=TimerConfig(budget_s=0.25, max_samples=30)),
    "default": dict(devices=("cpu", "cuda"), frameworks=("torch", "keras"),
                    input_dims=(100,), widths=(64, 256, 1000), depths=(2, 10),
                    batches=(32, 1024), timer=TimerConfig(budget_s=0.4, max_samples=50)),
    "full": dict(devices=("cpu", "cuda"), dtypes=("fp32", "bf16"), frameworks=("torch", "keras"),
                 input_dims=(10, 100, 1000), widths=(64, 256, 1000, 2048),
                 depths=(1, 4, 10), batches=(32, 256, 1024),
                 timer=TimerConfig(budget_s=1.0)),
}


def preset(name: str, **overrides: Any) -> SweepConfig:
    """A :class:`SweepConfig` from a named preset, with fields overridden."""
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return SweepConfig(**{**PRESETS[name], **overrides})


def grid(config: SweepConfig) -> list[Point]:
    """All points, cheapest first (by FLOPs per batch), so a cut-short sweep has the small end."""
    points = [Point(dev, dt, fw, d, w, L, b, config.activation)
              for dev in config.devices for dt in config.dtypes for fw in config.frameworks
              for d in config.input_dims for w in config.widths for L in config.depths
              for b in config.batches]
    return sorted(points, key=lambda p: (p.spec().train_step_flops() * p.batch, p.key))


def _base_row(point: Point, config: SweepConfig, phase: str) -> dict[str, Any]:
    spec = point.spec()
    return {**point.as_row(), "params": spec.num_params, "phase": phase,
            "flops_per_sample": phase_flops(spec, phase),
            "predicted_bytes": predicted_bytes(spec, phase, point.dtype, point.batch),
            "seed": config.seed, "status": "ok", "reason": ""}


def skip_rows(point: Point, config: SweepConfig, status: str, reason: str) -> list[dict]:
    return [{**_base_row(point, config, ph), "status": status, "reason": reason}
            for ph in config.phases]


def precheck(point: Point, config: SweepConfig) -> str | None:
    """Why ``point`` must be skipped without running it (``None`` when it can run)."""
    device = resolve_device(point.device)
    reason = device_skip_reason(device)
    if reason:
        return reason
    spec = point.spec()
    need = max(predicted_bytes(spec, ph, point.dtype, point.batch) for ph in config.phases)
    return over_budget(need, device, config.memory_fraction)


def measure_point(point: Point, config: SweepConfig, peaks: dict[str, float]) -> list[dict]:
    """Measure every phase of one point in this process; OOM per phase is a result."""
    with threads(config.threads) as n_threads:
        rows = _measure_phases(point, config, peaks)
    peak_rss = host_peak_rss_bytes()
    for row in rows:
        row.update(threads=n_threads,
                   host_peak_rss=peak_rss if config.isolate else math.nan,
                   host_rss_note="" if config.isolate else "not isolated: process high-water mark")
    return rows


def _measure_phases(point: Point, config: SweepConfig, peaks: dict[str, float]) -> list[dict]:
    device = resolve_device(point.device)
    baseline_rss = host_rss_bytes()
    try:
        with guarded(device, "building the model") as built:
            bench = make_bench(point.spec(), batch=point.batch, device=device,
                               dtype=point.dtype, framework=point.framework, seed=config.seed)
    except UsageError as exc:  # e.g. Keras placed on another device than asked
        return skip_rows(point, config, "skipped", str(exc))
    if not built.ok:
        return skip_rows(point, config, built.status, built.reason)
    rows = []
    for phase in config.phases:
        row = {**_base_row(point, config, phase), "host_baseline_rss": baseline_rss}
        if point.framework == "keras" and phase not in KERAS_PHASES:
            rows.append({**row, "status": "skipped",
                         "reason": "not separable through the Keras API"})
            continue
        rows.append({**row, **_measure_phase(bench, phase, config.timer, peaks)})
    return rows


def _measure_phase(bench, phase: str, timer: TimerConfig,
                   peaks: dict[str, float]) -> dict[str, Any]:
    device = bench.device
    with guarded(device) as outcome, cuda_peak(device) as box:
        fn, setup = phase_callable(bench, phase)
        m = measure(fn, setup=setup, device=device, config=timer, label=phase)
    if not outcome.ok:
        return outcome.as_row()
    batch = bench.x.shape[0]
    gflops = phase_flops(bench.spec, phase) * batch / m.median / 1e9
    peak = peaks.get(bench.dtype, math.nan)
    out: dict[str, Any] = {**m.as_dict(), "samples_per_s": batch / m.median, "gflops": gflops,
                           "peak_gflops": peak, "peak_fraction": gflops / peak}
    if box[0] is not None:
        out.update(cuda_peak_allocated=box[0].allocated, cuda_peak_reserved=box[0].reserved)
    return out


def _measure_point_entry(point: Point, config: SweepConfig, peaks: dict[str, float]) -> list:
    """Worker-process entry point (spawned fresh per point)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return measure_point(point, config, peaks)


def done_keys(rows: list[dict]) -> set[str]:
    """Keys of points already done (any status but ``failed``, which is retried)."""
    return {key_of(r) for r in rows if r.get("status") != "failed"}


def collect_peaks(config: SweepConfig) -> dict[str, dict[str, float]]:
    """Measured (cached) matmul peak per device and dtype, at the sweep's thread count."""
    peaks: dict[str, dict[str, float]] = {}
    with threads(config.threads):
        for dev in config.devices:
            if not device_skip_reason(resolve_device(dev)):
                peaks[dev] = {dt: get_peak(dev, dt).gflops for dt in config.dtypes}
    return peaks


def run_sweep(config: SweepConfig, out: str | os.PathLike, *, resume: bool = False,
              progress: bool = True) -> pd.DataFrame:
    """Run the sweep, writing ``sweep.csv`` and ``sweep.json`` under ``out`` after each point.

    Returns the tidy table: one row per point and phase.
    """
    from tqdm.auto import tqdm

    with RunFolder(out, KIND, resume=resume, config=config.as_dict()) as folder:
        done = done_keys(folder.rows())
        rows = [r for r in folder.rows() if key_of(r) in done]
        points = [p for p in grid(config) if p.key not in done]
        peaks = collect_peaks(config)
        hardware = describe_hardware()
        meta = {"hardware": hardware, "peaks_gflops": peaks, "torch": torch.__version__,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        context = {"machine_id": hardware["machine_id"], "hostname": hardware["hostname"],
                   "torch": torch.__version__}
        folder.write_meta(KIND, meta)
        with Isolated(config.isolate) as runner, \
                tqdm(points, desc="sweep", unit="point", disable=not progress) as bar:
            for point in bar:
                bar.set_postfix_str(f"{point.device} {point.framework} d={point.input_dim} "
                                    f"w={point.width} L={point.depth} B={point.batch}")
                reason = precheck(point, config)
                new = (skip_rows(point, config, "skipped", reason) if reason else runner.run(
                    _measure_point_entry, point, config, peaks.get(point.device, {}),
                    on_error=lambda why, p=point: skip_rows(p, config, "failed", why)))
                rows.extend({**context, **r} for r in new)
                folder.write(KIND, rows)
        meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        folder.write_meta(KIND, meta)
        return pd.DataFrame(rows)


def config_from_args(preset_name: str | None, **overrides: Any) -> SweepConfig:
    """A config from an optional preset plus explicit overrides (``None`` values ignored)."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    names = {f.name for f in fields(SweepConfig)}
    unknown = set(overrides) - names
    if unknown:
        raise UsageError(f"unknown sweep settings: {', '.join(sorted(unknown))}")
    return preset(preset_name, **overrides) if preset_name else SweepConfig(**overrides)
