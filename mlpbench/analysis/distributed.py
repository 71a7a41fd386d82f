"""Pure functions over ``distributed.csv`` and ``collectives.csv``: scaling efficiency and
communication share per network and world size (median and spread over rounds), and a
model-based projection to more workers.

The projection (``kind == "projection"``) is a model, not a measurement: per-rank compute
time from the world-size-1 rows (strong scaling: scaled linearly with the per-worker batch),
plus a ring all-reduce of the gradients in DDP buckets, ``2(n−1)/n · bytes / busbw`` plus
``2(n−1)`` latencies per bucket, with ``busbw`` and the latency measured here
(``collectives.csv``, largest measured world size), and no overlap (an upper bound on the
step time). Bus bandwidth of a real cluster differs from a single VM's loopback.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mlpbench.measure.collectives import ring_allreduce_seconds

#: a network/grid point across world sizes and rounds
POINT = ["backend", "nodes", "scaling", "input_dim", "width", "depth", "params", "batch",
         "bucket_cap_mb"]
METRICS = ["efficiency", "comm_share", "overlap", "step_s", "compute_s", "allreduce_s",
           "samples_per_s"]


def _q(p: float):
    def f(s: pd.Series) -> float:
        s = s.dropna()
        return float(np.percentile(s, p)) if len(s) else math.nan
    f.__name__ = f"q{p}"
    return f


def scaling_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Median, 25th and 75th percentile over rounds of every metric, per point and world size.

    Only ``ok`` rows count; ``rounds`` is how many there were.
    """
    ok = frame[frame["status"] == "ok"]
    groups = ok.groupby([*POINT, "world_size"], dropna=False)
    parts = [groups.size().rename("rounds")]
    for m in METRICS:
        parts += [groups[m].median().rename(m), groups[m].agg(_q(25)).rename(f"{m}_q25"),
                  groups[m].agg(_q(75)).rename(f"{m}_q75")]
    out = pd.concat(parts, axis=1).reset_index()
    out["kind"] = "measured"
    return out


def bus_model(collectives: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Median bus bandwidth per message size, and the per-hop latency in seconds.

    Uses the largest world size above 1 in ``collectives``; latency is the smallest
    message's median time divided by the ring's ``2(n−1)`` hops.
    """
    multi = collectives[collectives["world_size"] > 1]
    if multi.empty:
        raise ValueError("no all-reduce measurement with more than one rank")
    n = int(multi["world_size"].max())
    at = multi[multi["world_size"] == n].groupby("bytes")[["busbw_gbps", "median_s"]].median()
    latency = float(at["median_s"].iloc[0]) / (2 * (n - 1))
    return at.reset_index(), latency


def allreduce_model_s(grad_bytes: int, bucket_bytes: int, n: int, bw: pd.DataFrame,
                      latency_s: float) -> float:
    """Modelled time to all-reduce ``grad_bytes`` in buckets on ``n`` ranks (ring, no overlap).

    Each bucket uses the measured bus bandwidth at the ladder size nearest its size (in log).
    """
    size = min(grad_bytes, bucket_bytes)
    idx = int(np.argmin(np.abs(np.log(bw["bytes"].to_numpy()) - math.log(size))))
    busbw = float(bw["busbw_gbps"].iloc[idx]) * 1e9
    buckets = math.ceil(grad_bytes / bucket_bytes)
    return ring_allreduce_seconds(grad_bytes, n, busbw) + buckets * 2 * (n - 1) * latency_s


def project(summary: pd.DataFrame, collectives: pd.DataFrame,
            world_sizes: Sequence[int] = (8, 64)) -> pd.DataFrame:
    """Projected step time, samples/s, efficiency and comm share at ``world_sizes``.

    ``summary`` is :func:`scaling_summary` output; rows without a world-size-1 baseline are
    left out. The result has ``kind == "projection"`` on every row.
    """
    bw, latency = bus_model(collectives)
    base = summary[(summary["world_size"] == 1) & (summary["kind"] == "measured")]
    rows = []
    for _, b in base.iterrows():
        for n in world_sizes:
            per_worker = b["batch"] / n if b["scaling"] == "strong" else b["batch"]
            compute = b["compute_s"] * per_worker / b["batch"]
            comm = allreduce_model_s(4 * int(b["params"]), int(b["bucket_cap_mb"] * 2**20), n,
                                     bw, latency)
            step = compute + comm
            sps = per_worker * n / step
            rows.append({**{k: b[k] for k in POINT}, "world_size": n, "kind": "projection",
                         "step_s": step, "compute_s": compute, "allreduce_s": comm,
                         "comm_share": comm / step, "samples_per_s": sps,
                         "efficiency": sps / (n * b["samples_per_s"])})
    return pd.DataFrame(rows)


def scaling_table(frame: pd.DataFrame, collectives: pd.DataFrame | None = None,
                  world_sizes: Sequence[int] = (8, 64)) -> pd.DataFrame:
    """Measured summary plus (when all-reduce data exist) the projection, one tidy table."""
    summary = scaling_summary(frame)
    if collectives is None or (collectives["world_size"] <= 1).all():
        return summary
    return pd.concat([summary, project(summary, collectives, world_sizes)], ignore_index=True)


def collectives_summary(collectives: pd.DataFrame) -> pd.DataFrame:
    """Median and 25th/75th percentile over rounds of time and bus bandwidth per size and P."""
    groups = collectives.groupby(["backend", "nodes", "world_size", "bytes"])
    parts = [groups.size().rename("rounds")]
    for m in ("median_s", "algbw_gbps", "busbw_gbps"):
        parts += [groups[m].median().rename(m), groups[m].agg(_q(25)).rename(f"{m}_q25"),
                  groups[m].agg(_q(75)).rename(f"{m}_q75")]
    return pd.concat(parts, axis=1).reset_index()
