"""The matmul yardstick timed beside a point, in the same process, interleaved with it.

A fraction of peak is a ratio; its numerator and denominator must see the same machine. The
yardstick is the fastest of a few dense products at the point's device, precision and
thread count — square ones and the GEMM shapes the network itself runs ([B×n_h]·[n_h×n_h]
forward, [n_h×B]·[B×n_h] for the weight gradient) — chosen after a warm-up, then timed in
every round of :func:`mlpbench.measure.timing.measure_interleaved`. :func:`paired_fraction`
gives the median of the per-round ratios and its bootstrap 95% interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mlpbench.measure.timing import Interleaved, TimerConfig, measure
from mlpbench.models import torch_dtype

#: square sizes tried per device (a 2048² CPU product takes ~80 ms: too long for a round)
SQUARES = {"cpu": (512, 1024), "cuda": (4096, 8192)}
#: a quick look at each candidate: enough to rank them after the warm-up
PICK = TimerConfig(warmup=2, min_samples=3, max_samples=5, budget_s=0.05, min_block_s=0.005)
#: seconds of warm-up before picking: frequency ramp, allocator, BLAS thread start-up
WARMUP_S = 0.2


@dataclass(frozen=True)
class Yardstick:
    fn: Callable[[], object]
    flops: float  # per call
    shape: tuple[int, int, int]  # (m, k, n)


def _product(m: int, k: int, n: int, device: torch.device, mode: str) -> Callable[[], object]:
    dtype = torch_dtype("fp32" if mode == "tf32" else mode)
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(m, k, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(k, n, generator=gen).to(device=device, dtype=dtype)
    return lambda: torch.mm(a, b)


def shapes_for(device: torch.device, batch: int | None, width: int | None) -> list[tuple]:
    """Candidate (m, k, n) products: squares plus the network's own hidden-layer GEMMs."""
    out = [(n, n, n) for n in SQUARES.get(device.type, SQUARES["cpu"])]
    if batch and width and batch * width * width >= 64**3:  # tiny GEMMs are no ceiling
        out += [(batch, width, width), (width, batch, width)]
    return list(dict.fromkeys(out))


def pick(device: torch.device, mode: str, batch: int | None = None,
         width: int | None = None) -> Yardstick:
    """The fastest candidate product after a warm-up (see the module docstring)."""
    cands = [(s, _product(*s, device, mode)) for s in shapes_for(device, batch, width)]
    big = max(cands, key=lambda c: c[0][0] * c[0][1] * c[0][2])[1]
    measure(big, device=device, config=TimerConfig(warmup=1, min_samples=1, max_samples=50,
                                                    budget_s=WARMUP_S, min_block_s=0))
    best = None
    for shape, fn in cands:
        flops = 2.0 * shape[0] * shape[1] * shape[2]
        rate = flops / measure(fn, device=device, config=PICK).median
        if best is None or rate > best[0]:
            best = (rate, Yardstick(fn, flops, shape))
    return best[1]


def paired_fraction(m: Interleaved, work_flops: float, ref_flops: float,
                    seed: int = 0) -> dict[str, float]:
    """``peak_gflops`` (median yardstick rate), ``peak_fraction`` (median of per-round
    achieved/yardstick rates), its bootstrap 95% interval, and ``peak_spread`` (the
    yardstick's IQR/median over rounds)."""
    from scipy import stats

    ratios = np.array([(work_flops / w) / (ref_flops / r) for w, r in m.rounds])
    rates = np.array([ref_flops / r / 1e9 for r in m.reference])
    q1, q3 = np.percentile(rates, [25, 75])
    out = {"peak_gflops": float(np.median(rates)), "peak_fraction": float(np.median(ratios)),
           "peak_fraction_lo": math.nan, "peak_fraction_hi": math.nan,
           "peak_spread": float((q3 - q1) / np.median(rates)), "peak_rounds": len(ratios)}
    if len(ratios) >= 3 and np.ptp(ratios) > 0:
        ci = stats.bootstrap((ratios,), np.median, confidence_level=0.95, n_resamples=999,
                             method="percentile", random_state=seed).confidence_interval
        out.update(peak_fraction_lo=float(ci.low), peak_fraction_hi=float(ci.high))
    elif len(ratios) >= 3:
        out.update(peak_fraction_lo=float(ratios[0]), peak_fraction_hi=float(ratios[0]))
    return out
