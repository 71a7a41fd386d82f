"""Roofline view of the phases: arithmetic intensity from the spec against the measured
matmul peak and memory bandwidth (pure functions).

Bytes moved per call follow a simple traffic model, each tensor read or written once per
pass (caches ignored, so the intensity is a lower bound for small networks that fit in
cache): with ``b`` bytes per element, ``P`` parameters and ``A = B * sum(fan_in + fan_out)``
activation elements over the Linear layers,

===========  ===================================================
phase        bytes moved
===========  ===================================================
infer        ``b (P + A)``            weights read, activations in and out
forward      ``b (P + A)``
backward     ``b (2P + 2A)``          weights read, gradients written, activations and
                                      their gradients read and written
train_sgd    forward + backward + ``3bP`` (SGD reads p and g, writes p)
train_adam   forward + backward + ``7bP`` (p, g, two moments read; p, moments written)
===========  ===================================================

A phase is memory-bound where its intensity (FLOPs / byte) is below the ridge point
``peak / bandwidth``; :func:`memory_bound_below_width` turns that into a width.
"""

from __future__ import annotations

import math

import pandas as pd

from mlpbench.spec import MLPSpec, dtype_bytes

#: optimizer update traffic in units of b*P
UPDATE_TRAFFIC = {"train_sgd": 3, "train_adam": 7}
#: the storage dtype of each precision (mixed precisions move fp32 tensors, an upper bound)
STORAGE = {"tf32": "fp32", "bf16-autocast": "fp32"}


def phase_bytes(spec: MLPSpec, phase: str, batch: int, dtype: str = "fp32") -> int:
    """Bytes one call of ``phase`` moves under the traffic model above."""
    b = dtype_bytes(STORAGE.get(dtype, dtype))
    p = spec.num_params
    acts = batch * sum(fan_in + fan_out for fan_in, fan_out in spec.layer_shapes)
    one_pass = p + acts
    if phase in ("infer", "forward"):
        return b * one_pass
    if phase == "backward":
        return b * 2 * one_pass
    if phase in UPDATE_TRAFFIC:
        return b * (3 * one_pass + UPDATE_TRAFFIC[phase] * p)
    raise ValueError(f"unknown phase {phase!r}")


def phase_matmul_flops(spec: MLPSpec, phase: str, batch: int) -> int:
    """Matmul FLOPs of one call (the same term the sweep's GFLOP/s uses)."""
    fwd, bwd = spec.forward_flops().matmul, spec.backward_flops().matmul
    per_sample = {"infer": fwd, "forward": fwd, "backward": bwd}.get(phase, fwd + bwd)
    return per_sample * batch


def intensity(spec: MLPSpec, phase: str, batch: int, dtype: str = "fp32") -> float:
    """Arithmetic intensity in FLOPs per byte moved."""
    return phase_matmul_flops(spec, phase, batch) / phase_bytes(spec, phase, batch, dtype)


def attainable_gflops(ai: float, peak_gflops: float, bandwidth_gbs: float) -> float:
    """The roofline: ``min(peak, intensity * bandwidth)`` in GFLOP/s."""
    return min(peak_gflops, ai * bandwidth_gbs)


def ridge(peak_gflops: float, bandwidth_gbs: float) -> float:
    """The intensity (FLOPs/byte) where the memory roof meets the compute roof."""
    return peak_gflops / bandwidth_gbs


def memory_bound_below_width(phase: str, input_dim: int, depth: int, batch: int,
                             peak_gflops: float, bandwidth_gbs: float, dtype: str = "fp32",
                             max_width: int = 2**20) -> float:
    """The smallest width at which ``phase`` reaches the ridge point (compute-bound); every
    narrower network is memory-bound. NaN when even ``max_width`` stays memory-bound.

    Intensity grows with width at fixed batch, so a bisection finds the boundary.
    """
    target = ridge(peak_gflops, bandwidth_gbs)

    def ok(w: int) -> bool:
        return intensity(MLPSpec(input_dim, w, depth), phase, batch, dtype) >= target

    if not ok(max_width):
        return math.nan
    lo, hi = 0, max_width  # ok(hi) holds; ok(lo) is false or lo == 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return float(hi)


def roofline_table(frame: pd.DataFrame, bandwidth_gbs: float) -> pd.DataFrame:
    """The sweep's ``ok`` rows with ``intensity``, ``attainable_gflops``, ``bound``
    (``memory`` or ``compute``) and ``roof_fraction = gflops / attainable``.

    Each row's own ``peak_gflops`` is its compute roof; ``bandwidth_gbs`` the memory roof.
    """
    ok = frame[frame["status"] == "ok"].copy()
    if ok.empty:
        return ok.assign(intensity=[], attainable_gflops=[], bound=[], roof_fraction=[])
    ok["intensity"] = [intensity(MLPSpec(int(r.input_dim), int(r.width), int(r.depth)),
                                 r.phase, int(r.batch), r.dtype) for r in ok.itertuples()]
    ok["attainable_gflops"] = [attainable_gflops(ai, pk, bandwidth_gbs)
                               for ai, pk in zip(ok["intensity"], ok["peak_gflops"],
                                                 strict=True)]
    ridge_ai = ok["peak_gflops"] / bandwidth_gbs
    ok["bound"] = (ok["intensity"] < ridge_ai).map({True: "memory", False: "compute"})
    ok["roof_fraction"] = ok["gflops"] / ok["attainable_gflops"]
    return ok.reset_index(drop=True)
