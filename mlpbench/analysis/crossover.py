"""Where CUDA overtakes the CPU: a pure function over a sweep table."""

from __future__ import annotations

import math

import pandas as pd

from mlpbench.point import NETWORK_KEYS, with_defaults

#: what one crossover is reported per: every point field but the device and the network's
#: size (a table from before the mode axis reads as eager)
SIZE_KEYS = ("input_dim", "width", "depth")
GROUP = ["phase", *(k for k in NETWORK_KEYS if k not in SIZE_KEYS)]
COLUMNS = [*GROUP, "crossover_params", "points_compared", "undecided"]


def crossover(frame: pd.DataFrame) -> pd.DataFrame:
    """Per phase (and dtype, framework, batch, mode): the smallest parameter count at which CUDA
    beats CPU, comparing the same network (every point field but the device) on both devices.
    CUDA wins a point only when its median plus half its IQR lies below the CPU's median less
    half its IQR; ``undecided`` counts points where CUDA's median is lower but the bands
    overlap. ``crossover_params`` is NaN where CUDA never won.
    """
    if "median_s" not in frame or frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    ok = with_defaults(frame[frame["status"] == "ok"])
    keys = ["phase", *[k for k in NETWORK_KEYS if k in ok]]
    ok = ok.assign(iqr_s=ok["iqr_s"].fillna(0) if "iqr_s" in ok else 0.0)
    cols = ["median_s", "iqr_s", "params"]
    cpu = ok[ok["device"] == "cpu"].groupby(keys)[cols].median()
    gpu = ok[ok["device"].astype(str).str.startswith("cuda")].groupby(keys)[cols[:2]].median()
    both = cpu.join(gpu.add_suffix("_cuda"), how="inner")
    if both.empty:
        return pd.DataFrame(columns=COLUMNS)
    both = both.reset_index()
    # a win is a difference beyond both spreads: the interquartile bands do not overlap
    # (asv's fallback test for few samples is the same idea with 99% intervals)
    cuda_hi = both["median_s_cuda"] + both["iqr_s_cuda"] / 2
    cpu_lo = both["median_s"] - both["iqr_s"] / 2
    both["cuda_wins"] = cuda_hi < cpu_lo
    both["undecided"] = ~both["cuda_wins"] & (both["median_s_cuda"] < both["median_s"])
    out = []
    for values, g in both.groupby(GROUP, dropna=False):
        wins = g[g["cuda_wins"]]
        out.append({**dict(zip(GROUP, values, strict=True)),
                    "crossover_params": wins["params"].min() if len(wins) else math.nan,
                    "points_compared": len(g), "undecided": int(g["undecided"].sum())})
    return pd.DataFrame(out, columns=COLUMNS)
