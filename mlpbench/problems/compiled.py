"""Timing one phase of a bench in any execution mode: the first call (which compiles, in a
compiled mode) apart from the steady state.

``first_call_s`` is the wall time of the first call (its untimed-elsewhere setup included);
``compile_s`` estimates what compilation added to it: ``first_call_s - median_s`` for a
compiled mode (inductor's on-disk cache makes it small when the kernels were compiled
before; ``compile_cache_hits`` says so), empty for eager. A compile failure is a ``failed``
row with the reason, as :func:`mlpbench.measure.memory.guarded` records it.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mlpbench.measure.contention import Probe, reasons
from mlpbench.measure.memory import cuda_peak, guarded
from mlpbench.measure.peak import ceiling
from mlpbench.measure.timing import TimerConfig, measure, measure_interleaved, time_once
from mlpbench.measure.yardstick import Yardstick, paired_fraction
from mlpbench.problems.modes import cache_hits, peak_mode
from mlpbench.problems.phases import Bench, phase_callable, phase_flops


def first_call(fn, setup, device) -> float:
    """Seconds of one cold call (setup included: a compiled forward compiles there)."""
    return time_once(fn, setup=setup, device=device, include_setup=True)


def _root_cause(exc: Exception) -> Exception:
    """``exc`` unchanged when it is its own cause (an OOM stays recognisable), else one
    exception whose first line names the wrapper and the root cause (a compiler backend's
    error is wrapped in ``BackendCompilerFailed`` whose first line omits it)."""
    root: BaseException = exc
    for _ in range(10):  # dynamo keeps the backend's error as ``inner_exception``
        inner = root.__cause__ or getattr(root, "inner_exception", None)
        if not isinstance(inner, BaseException) or inner is root:
            break
        root = inner
    if root is exc:
        return exc
    first = (str(root).splitlines() or [""])[0]
    return type(root)(f"{type(exc).__name__} <- {type(root).__name__}: {first}") \
        if isinstance(root, RuntimeError | ValueError | TypeError) else exc


def time_phase(bench: Bench, phase: str, timer: TimerConfig, peak_ref: float,
               yard: Yardstick | None = None) -> dict[str, Any]:
    """Measure ``phase`` on ``bench``: the first call, then the steady state — interleaved
    with the matmul yardstick ``yard`` when given (the fraction of peak is then the median of
    paired per-round ratios), with contention evidence and its verdict. ``peak_ref`` is the
    machine's cached reference peak (``peak_ref_gflops``; the divisor when ``yard`` is None)."""
    device = bench.device
    hits = cache_hits()
    n_threads = torch.get_num_threads()
    with guarded(device, f"{bench.mode} {phase}") as outcome, cuda_peak(device) as box:
        fn, setup = phase_callable(bench, phase)
        try:
            cold = first_call(fn, setup, device)
        except Exception as exc:
            raise _root_cause(exc) from exc
        with Probe(n_threads) as probe:
            if yard is None:
                m, paired = measure(fn, setup=setup, device=device, config=timer, label=phase), None
            else:
                paired = measure_interleaved(fn, yard.fn, setup=setup, device=device,
                                             config=timer, label=phase)
                m = paired.work
    if not outcome.ok:
        return outcome.as_row()
    batch = bench.x.shape[0]
    work = phase_flops(bench.spec, phase) * batch
    gflops = work / m.median / 1e9
    compiled = bench.mode != "eager"
    out: dict[str, Any] = {
        **m.as_dict(), "samples_per_s": batch / m.median, "gflops": gflops,
        "peak_gflops": peak_ref, "peak_fraction": gflops / peak_ref, "peak_ref_gflops": peak_ref,
        "first_call_s": cold,
        "compile_s": max(0.0, cold - m.median) if compiled else math.nan,
        "compile_cache_hits": cache_hits() - hits if compiled else math.nan}
    if paired is not None:
        out.update(paired_fraction(paired, work, yard.flops))
    out["peak_ceiling_gflops"] = ceiling(device.type, peak_mode(bench.dtype), n_threads)[0] \
        if device.type == "cpu" else math.nan
    out.update(probe.evidence.as_row())
    out["contention"] = reasons(probe.evidence, n_threads,
                                peak_spread=out.get("peak_spread", math.nan),
                                # unpaired: the point estimate against the cached peak
                                peak_fraction_lo=out.get("peak_fraction_lo",
                                                         out["peak_fraction"]))
    if box[0] is not None:
        out.update(cuda_peak_allocated=box[0].allocated, cuda_peak_reserved=box[0].reserved)
    return out
