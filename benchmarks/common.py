"""Shared helpers for the asv suite: environment, device checks, skip rules, warm state.

Heavy points stay in the parameter lists on every machine and are skipped with a reason
unless ``MLPBENCH_FULL`` is on.

Warm calls, not cold ones: asv_runner 0.3.x re-runs ``setup`` before every timed call of a
benchmark that has a setup hook and then fixes ``number`` to 1 (asv#966), so every sample
would be the first call after building a fresh model. Timed classes here therefore have no
``setup``: their state (model, batch, optimizer) is built once per process by
:func:`cached_state` on the first call (which falls in asv's warm-up) and reused, and asv's
automatic ``number`` batches many warm calls per sample. Points that cannot run raise
:class:`Skip` (asv's ``SkipNotImplemented``) with the reason.
"""

import functools

import torch

from mlpbench import validate
from mlpbench.devices import (
    MEMORY_FRACTION,  # share of device memory a point may use
    device_memory_bytes,
    device_skip_reason,
    resolve_device,
    synchronize,
)
from mlpbench.units import format_bytes

try:  # asv's skip from inside a benchmark body (a NotImplementedError subclass)
    from asv_runner.benchmarks.mark import SkipNotImplemented as Skip
except ImportError:  # pragma: no cover - asv not installed: plain NotImplementedError
    class Skip(NotImplementedError):
        """A point that cannot run here (the message says why)."""

def env_full(value=None):
    """``MLPBENCH_FULL`` as a bool; anything but a clear yes/no is an error (mlpbench's one
    environment parser, shared with the CLI)."""
    return validate.env_flag("MLPBENCH_FULL", value)


def env_threads(value=None):
    """``MLPBENCH_THREADS`` as a thread count, or None when unset/empty (mlpbench's one
    environment parser, shared with the CLI)."""
    return validate.env_threads(value)


FULL = env_full()
THREADS = env_threads()
#: FLOPs per timed call above which a point is heavy (~0.25 s at 200 GFLOP/s)
HEAVY_FLOPS = 5e10
DEVICES = ["cpu", "cuda"]
#: asv warm-up (s) of timed benchmarks: longer than the first call, which builds the state,
#: so that asv calibrates ``number`` on warm calls (with 0.1 s it settled on number=1)
WARMUP = 0.5
#: asv timing settings: >= 6 samples (Mann-Whitney in asv compare), <= 20, ~2 s per point
REPEAT = (6, 20, 2.0)


def device_or_skip(name):
    """The torch device, or skip (no GPU)."""
    device = resolve_device(name)
    reason = device_skip_reason(device)
    if reason:
        raise Skip(reason)
    return device


def skip_if_heavy(flops, what="point"):
    if not FULL and flops > HEAVY_FLOPS:
        raise Skip(f"heavy {what} ({flops:.2e} FLOPs per call); set MLPBENCH_FULL=1 to run it")


def skip_if_too_big(nbytes, device):
    limit = device_memory_bytes(device) * MEMORY_FRACTION
    if nbytes > limit:
        raise Skip(f"would need {format_bytes(nbytes)} (memory model) > {format_bytes(limit)}")


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
    """Honour MLPBENCH_THREADS (validated at import)."""
    if THREADS:
        torch.set_num_threads(THREADS)


def cached_state(build):
    """Decorator: build a benchmark's state once per process and parameter tuple.

    A skip (``Skip``) is cached too, so a skipped point stays cheap on every call.
    """
    @functools.cache
    def cached(*params):
        set_threads_from_env()
        try:
            return build(*params), None
        except NotImplementedError as exc:
            return None, str(exc)

    @functools.wraps(build)
    def get(*params):
        state, reason = cached(*params)
        if reason is not None:
            raise Skip(reason)
        return state

    get.cache_clear = cached.cache_clear
    return get
