"""Memory readings: host peak RSS, CUDA peak allocated/reserved, and out-of-memory as a state."""

from __future__ import annotations

import resource
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import psutil
import torch

from mlpbench.devices import MEMORY_FRACTION, usable_memory_bytes
from mlpbench.errors import UsageError
from mlpbench.units import format_bytes


def host_peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (``getrusage`` high-water mark).

    The mark never goes down, so a per-point figure needs a fresh process per point; the
    sweep runs each point in one (see :mod:`mlpbench.studies.sweep`).
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def host_rss_bytes() -> int:
    """Current resident set size of this process."""
    return psutil.Process().memory_info().rss


@dataclass(frozen=True)
class CudaPeak:
    """CUDA memory high-water marks over a region, in bytes."""

    allocated: int
    reserved: int


@contextmanager
def cuda_peak(device: torch.device):
    """Record CUDA peak allocated/reserved bytes of the enclosed region.

    Yields a one-element list that holds a :class:`CudaPeak` after the block (``None`` on
    CPU, where CUDA statistics do not apply).
    """
    box: list[CudaPeak | None] = [None]
    if device.type != "cuda":
        yield box
        return
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    try:
        yield box
    finally:
        torch.cuda.synchronize(device)
        box[0] = CudaPeak(torch.cuda.max_memory_allocated(device),
                          torch.cuda.max_memory_reserved(device))


def is_oom(exc: BaseException) -> bool:
    """Whether an exception is an out-of-memory condition (CUDA or host allocator)."""
    if isinstance(exc, torch.cuda.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and ("out of memory" in str(exc).lower()
                                              or "can't allocate memory" in str(exc).lower())


def release(device: torch.device) -> None:
    """Return cached blocks after an OOM so the next point starts clean."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def _vm_hwm_bytes() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_host_peak() -> bool:
    """Reset this process's peak RSS (Linux ``clear_refs`` 5); ``False`` where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


@contextmanager
def host_peak():
    """Peak host RSS over the enclosed region, as bytes above the RSS at its start.

    Yields a one-element list holding the figure after the block; NaN where the kernel
    cannot reset the high-water mark (non-Linux), since the process-wide mark would
    then include earlier regions.
    """
    box: list[float] = [float("nan")]
    start = host_rss_bytes()
    ok = reset_host_peak()
    try:
        yield box
    finally:
        hwm = _vm_hwm_bytes()
        if ok and hwm is not None:
            box[0] = float(max(0, hwm - start))


@dataclass
class Outcome:
    """What :func:`guarded` saw: ``ok``, or ``oom`` / ``failed`` with a one-line reason."""

    status: str = "ok"
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_row(self) -> dict[str, str]:
        return {"status": self.status, "reason": self.reason}


@contextmanager
def guarded(device: torch.device, what: str = ""):
    """Run a measurement block; an exception becomes a result (``oom`` or ``failed``).

    Yields an :class:`Outcome`. Out-of-memory (host or CUDA) is ``oom``; any other
    ``Exception`` is ``failed`` with its type and first line; cached CUDA blocks are released
    so the next measurement starts clean. Bad input (:class:`UsageError`),
    ``KeyboardInterrupt`` and ``SystemExit`` pass through.
    """
    outcome = Outcome()
    try:
        yield outcome
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failed measurement is a result, not a crash
        release(device)
        outcome.status = "oom" if is_oom(exc) else "failed"
        text = f"{what}{': ' if what else ''}{type(exc).__name__}: {exc}"
        outcome.reason = (text.splitlines() or [""])[0][:300]


def over_budget(need: int, device: torch.device, fraction: float = MEMORY_FRACTION) -> str | None:
    """Why a measurement needing ``need`` bytes (memory model) must not run on ``device``,
    or ``None`` when it fits in ``fraction`` of the device's memory."""
    limit = usable_memory_bytes(device, fraction)
    if need <= limit:
        return None
    return (f"would need {format_bytes(need)} (memory model) > {format_bytes(limit)} "
            f"({fraction:.0%} of {device.type} memory)")
