"""The device's measured dense matmul rate, the yardstick for every throughput figure.

``measure_peak`` times square matmuls of a few sizes and keeps the best rate; the result is
cached per machine, device, dtype, precision mode, thread count and torch version.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from mlpbench.devices import describe_hardware
from mlpbench.errors import UsageError
from mlpbench.measure.timing import TimerConfig, measure
from mlpbench.models import torch_dtype

#: matrix sizes tried: large enough to reach the BLAS's steady state, small enough to be quick
CPU_SIZES = (512, 1024, 2048)
CUDA_SIZES = (2048, 4096, 8192)
#: precision modes per device; tf32 is fp32 inputs with TF32 tensor-core matmuls
MODES = {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "tf32", "bf16")}


@dataclass(frozen=True)
class PeakResult:
    device: str
    mode: str
    gflops: float  # best rate over the sizes tried
    size: int  # matrix size that reached it
    threads: int
    torch: str
    machine_id: str


def cache_path() -> Path:
    root = os.environ.get("MLPBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "mlpbench")
    return Path(root) / "peak.json"


def _key(device: str, mode: str, threads: int, machine: str) -> str:
    return f"{machine}|{device}|{mode}|{threads}|{torch.__version__}"


def _matmul_rate(n: int, device: torch.device, mode: str, config: TimerConfig) -> float:
    dtype = torch_dtype("fp32" if mode == "tf32" else mode)
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
    try:
        m = measure(lambda: torch.mm(a, b), device=device, config=config)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    return 2 * n**3 / m.median / 1e9


def measure_peak(device: str = "cpu", mode: str = "fp32", *,
                 config: TimerConfig = TimerConfig(budget_s=1.0)) -> PeakResult:
    """Measure the best dense matmul GFLOP/s of ``device`` in ``mode``."""
    dev = torch.device(device)
    if mode not in MODES.get(dev.type, ()):
        raise UsageError(f"peak mode {mode!r} not available on {dev.type}; "
                         f"choose from {', '.join(MODES.get(dev.type, ()))}")
    sizes = CUDA_SIZES if dev.type == "cuda" else CPU_SIZES
    rates = {n: _matmul_rate(n, dev, mode, config) for n in sizes}
    best = max(rates, key=rates.__getitem__)
    info = describe_hardware()
    return PeakResult(device=dev.type, mode=mode, gflops=rates[best], size=best,
                      threads=torch.get_num_threads(), torch=torch.__version__,
                      machine_id=info["machine_id"])


def get_peak(device: str = "cpu", mode: str = "fp32", *, refresh: bool = False) -> PeakResult:
    """The cached peak for this machine and setting, measured (and cached) when missing."""
    dev = torch.device(device).type
    machine = describe_hardware()["machine_id"]
    key = _key(dev, mode, torch.get_num_threads(), machine)
    path = cache_path()
    cache = _read_cache(path)
    if not refresh and key in cache:
        return cache[key]
    result = measure_peak(dev, mode)
    cache[key] = result
    _write_cache(path, cache)
    return result


def _entry(value: object) -> PeakResult | None:
    """A cached entry as a :class:`PeakResult`, or ``None`` when it is not a valid one."""
    if not isinstance(value, dict) or set(value) != {f.name for f in fields(PeakResult)}:
        return None
    gflops = value["gflops"]
    if isinstance(gflops, bool) or not isinstance(gflops, int | float) or not gflops > 0:
        return None
    return PeakResult(**value)


def _read_cache(path: Path) -> dict[str, PeakResult]:
    """The cache's valid entries; a missing, unreadable or wrongly shaped cache (or entry)
    is ignored, which only costs a re-measurement."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    entries = {str(k): _entry(v) for k, v in data.items()}
    return {k: v for k, v in entries.items() if v is not None}


def _write_cache(path: Path, cache: dict[str, PeakResult]) -> None:
    """Write the cache atomically; failing to (a full disk, a read-only home) is one warning
    line on stderr, not an error: the measurement stands and is repeated next time."""
    from mlpbench.results.store import atomic_write, dumps

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, dumps({k: asdict(v) for k, v in cache.items()}))
    except (OSError, UsageError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        print(f"mlpbench: warning: peak cache not saved ({reason})", file=sys.stderr)
