"""Evidence that a timing was (or was not) taken on a busy machine, and the verdict.

A :class:`Probe` brackets a measurement and records what the OS saw meanwhile: the 1-minute
load before and after, the CPU time the measuring process got (all its threads, and its
main thread alone), its involuntary context switches, and CPU steal from ``/proc/stat``.
:func:`reasons` turns that evidence (and the spread and interval of the interleaved peak)
into the ``contention`` column: empty when clean, else every reason, e.g.
``"main_cpu_share 0.61 < 0.90; ctx_switches 140/s > 50/s"``. The load is recorded on every
row and named when a run starts; it is not a verdict on its own (it lags a minute).

The thresholds live in :data:`THRESHOLDS`, each beside why it is what it is.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil

#: name -> (value, why). ``scripts/bench_contention.py`` measures how well they separate a
#: quiet machine from one with busy loops beside it (results/runs/<machine>/contention/).
THRESHOLDS: dict[str, tuple[float, str]] = {
    "main_cpu_share": (0.90, "the thread that drives the timed calls was off-CPU more than "
                             "10% of the wall time: it was descheduled or waited for a "
                             "descheduled worker"),
    "cpu_share": (0.90, "the process's threads got less than 90% of wall x threads; only "
                        "applied when the work keeps every thread busy (main_cpu_share high "
                        "is not enough then)"),
    "load_margin": (0.5, "1-minute load above the core count by more than half a core: "
                         "named in the one-line warning when a run starts, recorded on every "
                         "row, but no verdict on its own: the average lags a minute (quiet "
                         "sweeps right after busy loops stopped read 2.3-3.1 on 2 cores, and "
                         "80 of 90 such rows would have been flagged; results/runs/"
                         "amd-epyc-2c/contention)"),
    "ctx_switches_per_s": (50.0, "involuntary context switches per second of the process: a "
                                 "quiet machine preempts a busy thread a few times a second, "
                                 "a shared core hundreds of times"),
    "steal_fraction": (0.05, "the hypervisor gave more than 5% of the CPU time to other "
                             "guests"),
    "peak_spread": (0.50, "the interleaved matmul yardstick itself varied by IQR/median > "
                          "50% across rounds: the machine changed under the measurement "
                          "(quiet rows reach 0.64 at the 100th, 0.13 at the 75th percentile: "
                          "a lower bar flags noise, results/runs/amd-epyc-2c/contention)"),
    "peak_fraction_lo": (1.0, "the whole 95% interval of the paired fraction of peak lies "
                              "above 1 (unpaired, --no-yardstick: the fraction itself): "
                              "impossible for a correct yardstick, so contention or a "
                              "yardstick that is no ceiling"),
}


def _threshold(name: str) -> float:
    return THRESHOLDS[name][0]


def _steal() -> tuple[float, float]:
    """(steal, total) jiffies from /proc/stat's cpu line; zeros where it has none."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            parts = f.readline().split()
    except OSError:
        return 0.0, 0.0
    values = [float(v) for v in parts[1:9]]
    steal = values[7] if len(values) > 7 else 0.0
    return steal, sum(values)


def _load1() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return math.nan


@dataclass(frozen=True)
class Evidence:
    """What the OS saw while a measurement ran (see the module docstring)."""

    load1: float  # the larger of the 1-minute load before and after
    cpu_share: float  # process CPU time / (wall x threads)
    main_cpu_share: float  # the measuring thread's CPU time / wall
    ctx_switches_per_s: float  # involuntary context switches of the process per second
    steal_fraction: float  # CPU steal / all CPU time over the interval (NaN if unknown)
    wall_s: float

    def as_row(self) -> dict[str, float]:
        return asdict(self)


class Probe:
    """Context manager recording :class:`Evidence` over its block (``.evidence`` after)."""

    def __init__(self, threads: int) -> None:
        self.threads = max(1, int(threads))
        self.evidence: Evidence | None = None

    def __enter__(self) -> Probe:
        self._proc = psutil.Process()
        self._load0 = _load1()
        self._steal0 = _steal()
        t = self._proc.cpu_times()
        self._cpu0 = t.user + t.system
        self._ctx0 = self._proc.num_ctx_switches().involuntary
        self._thread0 = time.thread_time()
        self._wall0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = max(time.perf_counter() - self._wall0, 1e-9)
        main = time.thread_time() - self._thread0
        t = self._proc.cpu_times()
        ctx = self._proc.num_ctx_switches().involuntary - self._ctx0
        steal1, total1 = _steal()
        d_total = total1 - self._steal0[1]
        steal = (steal1 - self._steal0[0]) / d_total if d_total > 0 else math.nan
        self.evidence = Evidence(
            load1=max(self._load0, _load1()),
            cpu_share=(t.user + t.system - self._cpu0) / (wall * self.threads),
            main_cpu_share=main / wall, ctx_switches_per_s=ctx / wall,
            steal_fraction=steal, wall_s=wall)


def reasons(ev: Evidence | None, threads: int, *, cores: int | None = None,
            peak_spread: float = math.nan, peak_fraction_lo: float = math.nan) -> str:
    """The ``contention`` verdict: ``""`` when clean, else every reason joined by ``"; "``.

    ``threads`` is the measurement's thread count. ``cpu_share`` (all threads) is judged only
    when the main thread was busy yet the others were not, i.e. never on its own for work
    too small to keep every thread busy (a quiet machine would fail it).
    """
    out = []
    cores = cores or os.cpu_count() or 1
    if ev is not None:
        if ev.main_cpu_share < _threshold("main_cpu_share"):
            out.append(f"main_cpu_share {ev.main_cpu_share:.2f} < "
                       f"{_threshold('main_cpu_share'):.2f}")
        if ev.ctx_switches_per_s > _threshold("ctx_switches_per_s"):
            out.append(f"ctx_switches {ev.ctx_switches_per_s:.0f}/s > "
                       f"{_threshold('ctx_switches_per_s'):.0f}/s")
        if ev.steal_fraction > _threshold("steal_fraction"):
            out.append(f"steal {ev.steal_fraction:.0%} > {_threshold('steal_fraction'):.0%}")
    if peak_spread > _threshold("peak_spread"):
        out.append(f"peak spread {peak_spread:.0%} > {_threshold('peak_spread'):.0%}")
    if peak_fraction_lo > _threshold("peak_fraction_lo"):
        out.append(f"peak_fraction interval above 1 (lo {peak_fraction_lo:.2f}): contention "
                   "or a yardstick that is not a ceiling")
    return "; ".join(out)


def machine_busy(threads: int, cores: int | None = None) -> str:
    """One line when the machine is busy right now (for the start of a run), else ``""``."""
    cores = cores or os.cpu_count() or 1
    load = _load1()
    limit = cores - threads + _threshold("load_margin") if threads < cores else \
        _threshold("load_margin")
    if load > limit:
        return (f"load {load:.1f} on {cores} cores; results will be flagged — close other "
                "work or use --retries")
    return ""


def flags(frame: Any) -> Any:
    """The ``contention`` column of a table as stripped text ("" when clean; a column that a
    CSV read back as all-empty floats, or no column at all, is all clean)."""
    import pandas as pd

    if "contention" not in frame:
        return pd.Series("", index=frame.index, dtype=object)
    col = frame["contention"]
    return col.astype(object).where(col.notna(), "").astype(str).str.strip()


def columns(probe: Probe, **kw: float) -> dict[str, object]:
    """The evidence columns of a finished probe and their verdict (``kw``: peak_spread,
    peak_fraction_lo), as one row's worth."""
    ev = probe.evidence
    if ev is None:
        return {}
    return {**ev.as_row(), "contention": reasons(ev, probe.threads, **kw)}


#: the evidence columns every timed row carries, in order
COLUMNS = ("load1", "cpu_share", "main_cpu_share", "ctx_switches_per_s", "steal_fraction",
           "contention")
