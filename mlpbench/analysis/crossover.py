"""Where CUDA overtakes the CPU: a pure function over a sweep table."""

from __future__ import annotations

import math

import pandas as pd

from mlpbench.point import NETWORK_KEYS, with_defaults

#: what one crossover is reported per (a table from before the mode axis reads as eager)
GROUP = ["phase", "dtype", "framework", "batch", "mode"]
COLUMNS = [*GROUP, "crossover_params", "points_compared"]


def crossover(frame: pd.DataFrame) -> pd.DataFrame:
    """Per phase (and dtype, framework, batch, mode): the smallest parameter count at which CUDA
    beats CPU, comparing the median time of the same network (every point field but the
    device) on both devices. ``crossover_params`` is NaN where CUDA never won.
    """
    if "median_s" not in frame or frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    ok = with_defaults(frame[frame["status"] == "ok"])
    keys = ["phase", *[k for k in NETWORK_KEYS if k in ok]]
    cpu = ok[ok["device"] == "cpu"].groupby(keys)[["median_s", "params"]].median()
    gpu = ok[ok["device"].astype(str).str.startswith("cuda")].groupby(keys)[["median_s"]].median()
    both = cpu.join(gpu.rename(columns={"median_s": "median_s_cuda"}), how="inner")
    if both.empty:
        return pd.DataFrame(columns=COLUMNS)
    both = both.reset_index()
    both["cuda_wins"] = both["median_s_cuda"] < both["median_s"]
    out = []
    for values, g in both.groupby(GROUP):
        wins = g[g["cuda_wins"]]
        out.append({**dict(zip(GROUP, values, strict=True)),
                    "crossover_params": wins["params"].min() if len(wins) else math.nan,
                    "points_compared": len(g)})
    return pd.DataFrame(out, columns=COLUMNS)
