"""Shared helpers for the asv suite: device checks, skip rules, synchronized calls.

Heavy points stay in the parameter lists on every machine; ``setup`` skips them (raising
``NotImplementedError`` with the reason) unless ``MLPBENCH_FULL=1``.
"""


import torch

from mlpbench.devices import device_memory_bytes, device_skip_reason, resolve_device, synchronize
from mlpbench.units import format_bytes
from mlpbench.validate import env_flag, env_int

FULL = env_flag("MLPBENCH_FULL")
#: FLOPs per timed call above which a point is heavy (~0.25 s at 200 GFLOP/s)
HEAVY_FLOPS = 5e10
#: share of device memory a point may use
MEMORY_FRACTION = 0.8
DEVICES = ["cpu", "cuda"]
#: asv timing settings for heavy-ish benchmarks: >= 6 samples (Mann-Whitney in asv compare)
REPEAT = (6, 20, 5.0)


def device_or_skip(name):
    """The torch device, or skip (no GPU)."""
    device = resolve_device(name)
    reason = device_skip_reason(device)
    if reason:
        raise NotImplementedError(reason)
    return device


def skip_if_heavy(flops, what="point"):
    if not FULL and flops > HEAVY_FLOPS:
        raise NotImplementedError(f"heavy {what} ({flops:.2e} FLOPs per call); "
                                  "set MLPBENCH_FULL=1 to run it")


def skip_if_too_big(nbytes, device):
    limit = device_memory_bytes(device) * MEMORY_FRACTION
    if nbytes > limit:
        raise NotImplementedError(f"would need {format_bytes(nbytes)} (memory model) > "
                                  f"{format_bytes(limit)}")


def synced(fn, device):
    """``fn`` followed by a device synchronize: timed calls cover the kernels on CUDA."""
    if device.type != "cuda":
        return fn

    def call():
        out = fn()
        synchronize(device)
        return out

    return call


def set_threads_from_env():
    """Honour MLPBENCH_THREADS (asv runs each benchmark in a fresh process); a value that is
    not a positive integer is an error naming it."""
    threads = env_int("MLPBENCH_THREADS")
    if threads:
        torch.set_num_threads(threads)
