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
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, fields
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from mlpbench.devices import (
    describe_hardware,
    device_memory_bytes,
    device_skip_reason,
    resolve_device,
    set_threads,
)
from mlpbench.errors import UsageError
from mlpbench.memory import cuda_peak, host_peak_rss_bytes, host_rss_bytes, is_oom, release
from mlpbench.peak import get_peak
from mlpbench.phases import (
    FRAMEWORKS,
    KERAS_PHASES,
    PHASES,
    make_bench,
    phase_callable,
    phase_flops,
)
from mlpbench.results import prepare_out, write_meta, write_table
from mlpbench.spec import MLPSpec
from mlpbench.summary import format_bytes
from mlpbench.timing import TimerConfig, measure

SWEEP_DTYPES = ("fp32", "bf16")
CSV_NAME = "sweep.csv"
POINT_KEYS = ("device", "dtype", "framework", "input_dim", "width", "depth", "batch")


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
    memory_fraction: float = 0.8  # a point may use at most this share of device memory
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
        if self.threads is not None and self.threads <= 0:
            raise UsageError(f"threads must be positive, got {self.threads}")
        if not 0 < self.memory_fraction <= 1:
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


@dataclass(frozen=True)
class Point:
    """One grid point; all of its phases are measured in one process."""

    device: str
    dtype: str
    framework: str
    input_dim: int
    width: int
    depth: int
    batch: int

    @property
    def key(self) -> str:
        return "|".join(str(getattr(self, k)) for k in POINT_KEYS)

    def spec(self, activation: str) -> MLPSpec:
        return MLPSpec(self.input_dim, self.width, self.depth, activation=activation)


def grid(config: SweepConfig) -> list[Point]:
    """All points, cheapest first (by FLOPs per batch), so a cut-short sweep has the small end."""
    points = [Point(dev, dt, fw, d, w, L, b)
              for dev in config.devices for dt in config.dtypes for fw in config.frameworks
              for d in config.input_dims for w in config.widths for L in config.depths
              for b in config.batches]
    return sorted(points, key=lambda p: (p.spec(config.activation).train_step_flops() * p.batch,
                                         p.key))


def predicted_bytes(spec: MLPSpec, phase: str, dtype: str, batch: int) -> int:
    """Memory-model bytes a phase needs (inputs and targets included)."""
    io = batch * (spec.input_dim + spec.output_dim) * (4 if dtype == "fp32" else 2)
    if phase in ("infer", "forward"):
        m = spec.memory(dtype, batch, "sgd")
        return m.params + m.activations + io
    optimizer = "adam" if phase == "train_adam" else "sgd"
    return spec.memory(dtype, batch, optimizer).training + io


def _base_row(point: Point, config: SweepConfig, phase: str) -> dict[str, Any]:
    spec = point.spec(config.activation)
    return {**asdict(point), "activation": config.activation, "params": spec.num_params,
            "phase": phase, "flops_per_sample": phase_flops(spec, phase),
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
    spec = point.spec(config.activation)
    need = max(predicted_bytes(spec, ph, point.dtype, point.batch) for ph in config.phases)
    limit = int(device_memory_bytes(device) * config.memory_fraction)
    if need > limit:
        return (f"would need {format_bytes(need)} (memory model) > {format_bytes(limit)} "
                f"({config.memory_fraction:.0%} of {point.device} memory)")
    return None


def measure_point(point: Point, config: SweepConfig, peaks: dict[str, float]) -> list[dict]:
    """Measure every phase of one point in this process; OOM per phase is a result."""
    threads = set_threads(config.threads)
    device = resolve_device(point.device)
    baseline_rss = host_rss_bytes()
    spec = point.spec(config.activation)
    try:
        bench = make_bench(spec, batch=point.batch, device=device, dtype=point.dtype,
                           framework=point.framework, seed=config.seed)
    except UsageError as exc:  # e.g. Keras placed on another device than asked
        return skip_rows(point, config, "skipped", str(exc))
    except Exception as exc:  # noqa: BLE001 - an OOM building the point is a result
        if not is_oom(exc):
            raise
        release(device)
        return skip_rows(point, config, "oom", f"building the model: {exc}".splitlines()[0])
    rows = []
    for phase in config.phases:
        row = _base_row(point, config, phase)
        if point.framework == "keras" and phase not in KERAS_PHASES:
            rows.append({**row, "status": "skipped",
                         "reason": "not separable through the Keras API"})
            continue
        rows.append({**row, **_measure_phase(bench, phase, config.timer, peaks, spec)})
    del bench
    peak_rss = host_peak_rss_bytes()
    for row in rows:
        row.update(threads=threads, host_baseline_rss=baseline_rss,
                   host_peak_rss=peak_rss if config.isolate else math.nan,
                   host_rss_note="" if config.isolate else "not isolated: process high-water mark")
    return rows


def _measure_phase(bench, phase: str, timer: TimerConfig, peaks: dict[str, float],
                   spec: MLPSpec) -> dict[str, Any]:
    device = bench.device
    try:
        fn, setup = phase_callable(bench, phase)
        with cuda_peak(device) as box:
            m = measure(fn, setup=setup, device=device, config=timer, label=phase)
    except Exception as exc:  # noqa: BLE001 - OOM is a result; other errors too, per phase
        release(device)
        status = "oom" if is_oom(exc) else "failed"
        return {"status": status, "reason": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
    batch = bench.x.shape[0]
    flops = phase_flops(spec, phase) * batch
    peak = peaks.get(bench.dtype, math.nan)
    gflops = flops / m.median / 1e9
    out: dict[str, Any] = {**m.as_dict(), "samples_per_s": batch / m.median, "gflops": gflops,
                           "peak_gflops": peak, "peak_fraction": gflops / peak}
    if box[0] is not None:
        out.update(cuda_peak_allocated=box[0].allocated, cuda_peak_reserved=box[0].reserved)
    return out


def _measure_point_entry(point: Point, config: SweepConfig, peaks: dict[str, float]) -> list:
    """Worker-process entry point (spawned fresh per point)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return measure_point(point, config, peaks)


class _Runner:
    """Runs points in a fresh spawned process each, rebuilding the pool if one dies."""

    def __init__(self, isolate: bool) -> None:
        self.isolate = isolate
        self.pool: ProcessPoolExecutor | None = None

    def run(self, point: Point, config: SweepConfig, peaks: dict[str, float]) -> list[dict]:
        if not self.isolate:
            return _measure_point_entry(point, config, peaks)
        if self.pool is None:
            self.pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"),
                                            max_tasks_per_child=1)
        try:
            return self.pool.submit(_measure_point_entry, point, config, peaks).result()
        except BrokenProcessPool:
            self.close()
            return skip_rows(point, config, "failed",
                             "worker process died (killed, likely out of host memory)")
        except Exception as exc:  # noqa: BLE001 - the sweep goes on; the error is recorded
            return skip_rows(point, config, "failed",
                             f"{type(exc).__name__}: {exc}".splitlines()[0][:300])

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def save(out: Path, rows: list[dict], meta: dict[str, Any]) -> pd.DataFrame:
    """Rewrite the results table and its metadata atomically."""
    frame = pd.DataFrame(rows)
    write_table(out, "sweep", frame)
    write_meta(out, "sweep", meta)
    return frame


def load_rows(out: Path) -> list[dict]:
    """Rows of an existing sweep table, or nothing."""
    try:
        return pd.read_csv(out / CSV_NAME, keep_default_na=False,
                           na_values=[""]).to_dict("records")
    except (OSError, pd.errors.EmptyDataError):
        return []


def measured_keys(rows: list[dict]) -> set[str]:
    """Keys of points already done (any status but ``failed``, which is retried)."""
    done: set[str] = set()
    for row in rows:
        if row.get("status") != "failed":
            done.add("|".join(str(row[k]) for k in POINT_KEYS))
    return done


def collect_peaks(config: SweepConfig, devices: Iterable[str]) -> dict[str, dict[str, float]]:
    """Measured (cached) matmul peak per device and dtype, at the sweep's thread count."""
    set_threads(config.threads)
    peaks: dict[str, dict[str, float]] = {}
    for dev in devices:
        if device_skip_reason(resolve_device(dev)):
            continue
        peaks[dev] = {dt: get_peak(dev, dt).gflops for dt in config.dtypes}
    return peaks


def run_sweep(config: SweepConfig, out: str | os.PathLike, *, resume: bool = False,
              progress: bool = True) -> pd.DataFrame:
    """Run the sweep, writing ``sweep.csv`` and ``sweep.json`` under ``out`` after each point.

    Returns the tidy table: one row per point and phase.
    """
    from tqdm.auto import tqdm

    out_dir = prepare_out(out, CSV_NAME, resume)
    rows = load_rows(out_dir) if resume else []
    done = measured_keys(rows)
    rows = [r for r in rows if "|".join(str(r[k]) for k in POINT_KEYS) in done]
    points = [p for p in grid(config) if p.key not in done]
    peaks = collect_peaks(config, config.devices)
    hardware = describe_hardware()
    meta = {"hardware": hardware, "config": config.as_dict(), "peaks_gflops": peaks,
            "torch": torch.__version__, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    context = {"machine_id": hardware["machine_id"], "hostname": hardware["hostname"],
               "torch": torch.__version__}
    runner = _Runner(config.isolate)
    try:
        with tqdm(points, desc="sweep", unit="point", disable=not progress) as bar:
            for point in bar:
                bar.set_postfix_str(f"{point.device} {point.framework} d={point.input_dim} "
                                    f"w={point.width} L={point.depth} B={point.batch}")
                reason = precheck(point, config)
                new = (skip_rows(point, config, "skipped", reason) if reason
                       else runner.run(point, config, peaks.get(point.device, {})))
                rows.extend({**context, **r} for r in new)
                save(out_dir, rows, meta)
    finally:
        runner.close()
    meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return save(out_dir, rows, meta)


def crossover(frame: pd.DataFrame) -> pd.DataFrame:
    """Per phase (and dtype, framework, batch): the smallest parameter count at which CUDA
    beats CPU, comparing the median time of the same network on both devices.

    ``crossover_params`` is NaN where both were measured but CUDA never won.
    """
    ok = frame[frame["status"] == "ok"]
    keys = ["phase", "dtype", "framework", "input_dim", "width", "depth", "batch"]
    cpu = ok[ok["device"] == "cpu"].set_index(keys)
    gpu = ok[ok["device"].str.startswith("cuda")].set_index(keys)
    both = cpu[["median_s", "params"]].join(
        gpu[["median_s"]].rename(columns={"median_s": "median_s_cuda"}), how="inner")
    if both.empty:
        return pd.DataFrame(columns=["phase", "dtype", "framework", "batch", "crossover_params",
                                     "points_compared"])
    both = both.reset_index()
    both["cuda_wins"] = both["median_s_cuda"] < both["median_s"]
    out = []
    for (phase, dtype, fw, batch), g in both.groupby(["phase", "dtype", "framework", "batch"]):
        wins = g[g["cuda_wins"]]
        out.append({"phase": phase, "dtype": dtype, "framework": fw, "batch": batch,
                    "crossover_params": wins["params"].min() if len(wins) else math.nan,
                    "points_compared": len(g)})
    return pd.DataFrame(out)


def summary_text(frame: pd.DataFrame) -> str:
    """A short plain-text summary of a sweep table."""
    lines = []
    counts = frame.groupby("status").size().to_dict()
    lines.append("rows: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    ok = frame[frame["status"] == "ok"]
    if len(ok):
        best = ok.sort_values("peak_fraction", ascending=False).groupby("phase").head(1)
        for _, r in best.iterrows():
            lines.append(f"best {r['phase']:<10} {r['device']} {r['framework']} P={r['params']:,} "
                         f"B={r['batch']}: {r['gflops']:.1f} GFLOP/s = "
                         f"{r['peak_fraction']:.0%} of measured peak, "
                         f"{r['samples_per_s']:.0f} samples/s")
    for _, r in frame[frame["status"] != "ok"].drop_duplicates(
            ["device", "framework", "status", "reason"]).head(10).iterrows():
        lines.append(f"{r['status']}: {r['device']} {r['framework']} P={r['params']:,}: "
                     f"{r['reason']}")
    cross = crossover(frame)
    for _, r in cross.iterrows():
        where = (f"P >= {int(r['crossover_params']):,}" if not math.isnan(r["crossover_params"])
                 else "never in this grid")
        lines.append(f"CUDA beats CPU for {r['phase']} ({r['dtype']}, {r['framework']}, "
                     f"B={r['batch']}): {where}")
    return "\n".join(lines)


def config_from_args(preset_name: str | None, **overrides: Any) -> SweepConfig:
    """A config from an optional preset plus explicit overrides (``None`` values ignored)."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    names = {f.name for f in fields(SweepConfig)}
    unknown = set(overrides) - names
    if unknown:
        raise UsageError(f"unknown sweep settings: {', '.join(sorted(unknown))}")
    return preset(preset_name, **overrides) if preset_name else SweepConfig(**overrides)
