"""All-reduce bandwidth with the nccl-tests definitions, and the ring all-reduce time model.

Definitions (nccl-tests, ``doc/PERFORMANCE.md``): for a message of ``S`` bytes reduced in
``t`` seconds, the *algorithm bandwidth* is ``algbw = S / t``; for all-reduce on ``n`` ranks
the *bus bandwidth* is ``busbw = algbw · 2(n−1)/n``, the rate each link must sustain in a
ring all-reduce (every byte is sent ``2(n−1)/n`` times). busbw is therefore comparable across
rank counts, and inverting it gives the ring model ``t(S, n) = 2(n−1)/n · S / busbw``.

:func:`allreduce_samples` needs an initialized default process group; the rest is pure.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist

from mlpbench.devices import synchronize

#: smallest message of the default size ladder: below ~1 KiB the time is pure latency
MIN_BYTES = 1024
#: the ladder grows by 4x per step (nccl-tests use -f 2; 4 halves the run time)
SIZE_FACTOR = 4


def algbw(nbytes: float, seconds: float) -> float:
    """Algorithm bandwidth in bytes/s: message size over time."""
    return nbytes / seconds if seconds > 0 else float("nan")


def busbw_allreduce(algbw_bps: float, n: int) -> float:
    """Bus bandwidth of an all-reduce on ``n`` ranks: ``algbw · 2(n−1)/n`` (0 for one rank)."""
    if n < 1:
        raise ValueError(f"rank count must be positive, got {n}")
    return algbw_bps * 2 * (n - 1) / n


def ring_allreduce_seconds(nbytes: float, n: int, busbw_bps: float,
                           latency_s: float = 0.0) -> float:
    """Ring all-reduce time model: ``2(n−1)·latency + 2(n−1)/n · S / busbw`` (0 for n = 1)."""
    if n <= 1:
        return 0.0
    return 2 * (n - 1) * latency_s + 2 * (n - 1) / n * nbytes / busbw_bps


def size_ladder(max_bytes: int, min_bytes: int = MIN_BYTES, factor: int = SIZE_FACTOR) -> list[int]:
    """Message sizes ``min_bytes · factor^k`` up to the first one ≥ ``max_bytes``."""
    sizes = [min_bytes]
    while sizes[-1] < max_bytes:
        sizes.append(sizes[-1] * factor)
    return sizes


def allreduce_samples(tensors: Sequence[torch.Tensor], *, steps: int, warmup: int,
                      device: torch.device) -> list[float]:
    """This rank's wall times of all-reducing ``tensors`` one after the other, ``steps`` times.

    Every sample starts after a barrier, so the ranks start together and a sample measures
    the collective, not the ranks' arrival skew; a whole list is one sample (as DDP reduces
    its buckets). Collective call sequence is identical on every rank.
    """
    for _ in range(warmup):
        for t in tensors:
            dist.all_reduce(t)
    times = []
    for _ in range(steps):
        dist.barrier()
        synchronize(device)
        start = time.perf_counter()
        for t in tensors:
            dist.all_reduce(t)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def slowest_rank(samples: Sequence[Sequence[float]]) -> np.ndarray:
    """Per-sample maximum over ranks (a collective is as slow as its slowest rank)."""
    return np.max(np.asarray(samples, dtype=float), axis=0)


def summarize(times: np.ndarray) -> dict[str, float]:
    """Median, mean and IQR of per-sample times in seconds."""
    q1, q3 = np.percentile(times, [25, 75])
    return {"median_s": float(np.median(times)), "mean_s": float(np.mean(times)),
            "iqr_s": float(q3 - q1), "n_samples": int(len(times))}


def bandwidth_rows(sizes: Sequence[int], *, steps: int, warmup: int,
                   device: torch.device) -> list[dict]:
    """All-reduce fp32 messages of each size; rank 0 returns one row per size, others ``[]``.

    Row fields: ``bytes``, ``elements``, time statistics of the slowest rank, ``algbw_gbps``
    and ``busbw_gbps`` (10^9 bytes/s, from the median time).
    """
    n, rank = dist.get_world_size(), dist.get_rank()
    rows = []
    for nbytes in sizes:
        elements = max(1, nbytes // 4)
        buf = torch.ones(elements, dtype=torch.float32, device=device)
        mine = allreduce_samples([buf], steps=steps, warmup=warmup, device=device)
        gathered: list = [None] * n
        dist.all_gather_object(gathered, mine)
        if rank == 0:
            stats = summarize(slowest_rank(gathered))
            bw = algbw(elements * 4, stats["median_s"])
            rows.append({"bytes": elements * 4, "elements": elements, **stats,
                         "algbw_gbps": bw / 1e9, "busbw_gbps": busbw_allreduce(bw, n) / 1e9})
    return rows
