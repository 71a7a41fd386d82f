"""Hardware sweeps: every phase over device × dtype × framework × d × width × depth × batch ×
execution mode × thread count (the grid: :mod:`mlpbench.studies.sweep_config`).

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
import sys
import time
from typing import Any

import pandas as pd
import torch

from mlpbench.devices import describe_hardware, device_skip_reason, resolve_device, threads
from mlpbench.errors import UsageError
from mlpbench.measure.contention import flags, machine_busy
from mlpbench.measure.isolation import Isolated
from mlpbench.measure.memory import guarded, host_peak_rss_bytes, host_rss_bytes, over_budget
from mlpbench.measure.peak import get_peak, note_observed
from mlpbench.measure.yardstick import pick
from mlpbench.point import Point, key_of
from mlpbench.problems.compiled import time_phase
from mlpbench.problems.modes import inductor_cache_dir, peak_mode, precision, skip_reason
from mlpbench.problems.phases import KERAS_PHASES, make_bench, phase_flops, predicted_bytes
from mlpbench.results import RunFolder
from mlpbench.studies.sweep_config import (  # noqa: F401 - the sweep's public names
    KIND,
    PRESETS,
    STUDY,
    SWEEP_DTYPES,
    SweepConfig,
    config_from_args,
    grid,
    preset,
)

#: peaks by (device, peak mode, threads), as measured (and cached) before the points run
Peaks = dict[tuple[str, str, int], float]

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
    reason = device_skip_reason(device) or skip_reason(point.mode, point.dtype, device,
                                                       point.framework)
    if reason:
        return reason
    spec = point.spec()
    need = max(predicted_bytes(spec, ph, point.dtype, point.batch) for ph in config.phases)
    return over_budget(need, device, config.memory_fraction)


def measure_point(point: Point, config: SweepConfig, peaks: Peaks) -> list[dict]:
    """Measure every phase of one point in this process; OOM per phase is a result."""
    with threads(point.threads) as n_threads, precision(point.dtype, resolve_device(point.device)):
        rows = _measure_phases(point, config, peaks.get(
            (point.device, peak_mode(point.dtype), n_threads), math.nan))
    peak_rss = host_peak_rss_bytes()
    for row in rows:
        row.update(threads=n_threads,
                   host_peak_rss=peak_rss if config.isolate else math.nan,
                   host_rss_note="" if config.isolate else "not isolated: process high-water mark")
    return rows


def _measure_phases(point: Point, config: SweepConfig, peak: float) -> list[dict]:
    device = resolve_device(point.device)
    baseline_rss = host_rss_bytes()
    try:
        with guarded(device, "building the model") as built:
            bench = make_bench(point.spec(), batch=point.batch, device=device,
                               dtype=point.dtype, framework=point.framework, seed=config.seed,
                               mode=point.mode)
    except UsageError as exc:  # e.g. Keras placed on another device than asked
        return skip_rows(point, config, "skipped", str(exc))
    if not built.ok:
        return skip_rows(point, config, built.status, built.reason)
    yard = pick(device, peak_mode(point.dtype), point.batch, point.width) \
        if config.yardstick else None
    rows = []
    for phase in config.phases:
        row = {**_base_row(point, config, phase), "host_baseline_rss": baseline_rss}
        if point.framework == "keras" and phase not in KERAS_PHASES:
            rows.append({**row, "status": "skipped",
                         "reason": "not separable through the Keras API"})
            continue
        rows.append({**row, **time_phase(bench, phase, config.timer, peak, yard)})
    return rows


def _measure_point_entry(point: Point, config: SweepConfig, peaks: Peaks) -> list:
    """Worker-process entry point (spawned fresh per point)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    inductor_cache_dir()
    return measure_point(point, config, peaks)


def done_keys(rows: list[dict]) -> set[str]:
    """Keys of points already done (any status but ``failed``, which is retried)."""
    return {key_of(r) for r in rows if r.get("status") != "failed"}


def collect_peaks(config: SweepConfig) -> Peaks:
    """Measured (cached) matmul peak per device, peak mode and thread count of the sweep."""
    peaks: Peaks = {}
    for n in config.thread_counts:
        with threads(n):
            for dev in config.devices:
                device = resolve_device(dev)
                if device_skip_reason(device):
                    continue
                for dt in config.dtypes:
                    if not skip_reason("eager", dt, device, "torch"):
                        mode = peak_mode(dt)
                        peaks[dev, mode, n] = get_peak(dev, mode).gflops
    return peaks


def peaks_meta(peaks: Peaks, config: SweepConfig) -> dict[str, Any]:
    """The peaks as metadata: ``{device: {mode: GFLOP/s}}`` at the first thread count, and
    ``{device: {threads: {mode: GFLOP/s}}}`` for all."""
    first = config.thread_counts[0]
    flat: dict[str, dict[str, float]] = {}
    nested: dict[str, dict[str, dict[str, float]]] = {}
    for (dev, mode, n), g in peaks.items():
        if n == first:
            flat.setdefault(dev, {})[mode] = g
        nested.setdefault(dev, {}).setdefault(str(n), {})[mode] = g
    return {"peaks_gflops": flat, "peaks_gflops_by_threads": nested}


def run_sweep(config: SweepConfig, out: str | os.PathLike, *, resume: bool = False,
              progress: bool = True) -> pd.DataFrame:
    """Run the sweep, writing ``sweep.csv`` and ``sweep.json`` under ``out`` after each point.

    Returns the tidy table: one row per point and phase.
    """
    from tqdm.auto import tqdm

    with RunFolder(out, STUDY, resume=resume, config=config.as_dict()) as folder:
        done = done_keys(folder.rows())
        rows = [r for r in folder.rows() if key_of(r) in done]
        points = [p for p in grid(config) if p.key not in done]
        peaks = collect_peaks(config)
        hardware = describe_hardware()
        meta = {"hardware": hardware, **peaks_meta(peaks, config), "torch": torch.__version__,
                "inductor_cache": inductor_cache_dir() if set(config.modes) - {"eager"} else None}
        context = {"machine_id": hardware["machine_id"], "hostname": hardware["hostname"],
                   "torch": torch.__version__}
        folder.write_meta(KIND, meta)
        busy = machine_busy(max(config.thread_counts))
        if busy and progress:
            print(f"mlpbench: {busy}", file=sys.stderr)
        with Isolated(config.isolate) as runner, \
                tqdm(points, desc="sweep", unit="point", disable=not progress) as bar:
            for point in bar:
                bar.set_postfix_str(point.label())
                reason = precheck(point, config)
                new = (skip_rows(point, config, "skipped", reason) if reason else
                       _attempts(runner, point, config, peaks))
                rows.extend({**context, **r} for r in new)
                folder.write(KIND, rows)
        for line in _peak_notes(rows, config) if progress else []:
            print(f"mlpbench: {line}", file=sys.stderr)
        return pd.DataFrame(rows)


def _flagged(rows: list[dict]) -> int:
    return sum(bool(r.get("contention")) for r in rows if r.get("status") == "ok")


def _attempts(runner: Isolated, point: Point, config: SweepConfig, peaks: Peaks) -> list[dict]:
    """Measure a point; while its rows are flagged as contended, back off and measure it
    again, up to ``config.retries`` more times. The attempt with the fewest flagged rows is
    kept (flagged, never dropped); every row records ``attempts``."""
    best: list[dict] | None = None
    for attempt in range(1, config.retries + 2):
        if attempt > 1:
            time.sleep(config.backoff_s * (attempt - 1))
        new = runner.run(_measure_point_entry, point, config, peaks,
                         on_error=lambda why, p=point: skip_rows(p, config, "failed", why))
        if best is None or _flagged(new) < _flagged(best):
            best = new
        if not _flagged(best):
            break
    return [{**r, "attempts": attempt} for r in best]


def _peak_notes(rows: list[dict], config: SweepConfig) -> list[str]:
    """Cached peaks beaten by this run's clean interleaved yardsticks are dropped (one line
    each): they were measured on a busy machine."""
    frame = pd.DataFrame(rows)
    if frame.empty or "peak_rounds" not in frame:
        return []
    ok = frame[(frame["status"] == "ok") & (flags(frame) == "")]
    notes = []
    for (dev, dtype, n), g in ok.groupby(["device", "dtype", "threads"]):
        with threads(int(n)):
            note = note_observed(dev, peak_mode(dtype), int(n), float(g["peak_gflops"].max()))
        notes += [note] if note else []
    return notes
