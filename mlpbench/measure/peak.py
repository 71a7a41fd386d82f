"""The device's measured dense matmul rate, the yardstick for every throughput figure.

``measure_peak`` times square matmuls of a few sizes and keeps the best rate; the result is
cached per machine, device, dtype, precision mode, thread count and torch version, with the
matrix unit the mode can use (AMX / AVX-512 BF16 from the CPU flags, tensor cores from the
GPU's compute capability).
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
    units: str = ""  # the matrix unit the mode can use here (see matrix_units)


def cache_root() -> Path:
    """mlpbench's cache folder: ``$MLPBENCH_CACHE``, else ``$XDG_CACHE_HOME/mlpbench``."""
    root = Path(os.environ.get("MLPBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "mlpbench"))
    if root.exists() and not root.is_dir():
        name = "MLPBENCH_CACHE" if os.environ.get("MLPBENCH_CACHE") else "the cache folder"
        raise UsageError(f"{name} {str(root)!r} is not a folder; point it at a folder")
    return root


def cache_path() -> Path:
    return cache_root() / "peak.json"


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags of the first processor listed in ``path`` (empty if unreadable)."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def matrix_units(device: str, mode: str, flags: set[str] | None = None) -> str:
    """The matrix hardware a peak mode can use on ``device``: AMX, AVX-512 BF16, AVX-512 or
    AVX2 on CPU (from the CPU flags and ``torch.backends.cpu``), tensor cores or CUDA cores
    on a GPU (from its compute capability and the TF32 setting the mode implies)."""
    if torch.device(device).type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        tensor = (mode == "tf32" and major >= 8) or (mode in ("bf16", "fp16") and major >= 8)
        return f"{'tensor cores' if tensor else 'CUDA cores'} (sm_{major}{minor})"
    flags = cpu_flags() if flags is None else flags
    if mode == "bf16":
        for flag, name in (("amx_bf16", "AMX-BF16"), ("avx512_bf16", "AVX512-BF16")):
            if flag in flags:
                return name
        return "no bf16 matrix unit (bf16 converted to fp32)"
    return torch.backends.cpu.get_cpu_capability()


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
                      machine_id=info["machine_id"], units=matrix_units(device, mode))


def get_peak(device: str = "cpu", mode: str = "fp32", *, refresh: bool = False) -> PeakResult:
    """The cached peak for this machine and setting, measured (and cached) when missing."""
    dev = torch.device(device).type
    machine = describe_hardware()["machine_id"]
    key = _key(dev, mode, torch.get_num_threads(), machine)
    path = cache_path()
    cache = {k: v for k, v in read_cache(path).items() if _entry(v) is not None}
    cached = _entry(cache.get(key)) if not refresh else None
    if cached is not None:
        return cached
    result = measure_peak(dev, mode)
    cache[key] = asdict(result)
    write_cache(path, cache)
    return result


def _entry(raw: object) -> PeakResult | None:
    """A cached entry as a :class:`PeakResult`, or ``None`` (re-measure) when it is not a
    valid one (wrong keys, a non-positive or non-numeric rate)."""
    if not isinstance(raw, dict) or not set(raw) <= {f.name for f in fields(PeakResult)}:
        return None
    try:
        result = PeakResult(**raw)  # entries written before a field existed take its default
    except TypeError:
        return None
    gflops = result.gflops
    if isinstance(gflops, bool) or not isinstance(gflops, int | float) or not gflops > 0:
        return None
    return result


def read_cache(path: Path) -> dict[str, object]:
    """A JSON-object cache file; missing is empty; unreadable or wrongly shaped is reported in
    one line on stderr and treated as empty (a re-measurement; rewritten on the next store)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        print(f"mlpbench: ignoring corrupt cache {path}: {exc}".splitlines()[0], file=sys.stderr)
        return {}
    if not isinstance(data, dict):
        print(f"mlpbench: ignoring corrupt cache {path}: expected a JSON object, got "
              f"{type(data).__name__}", file=sys.stderr)
        return {}
    return data


def write_cache(path: Path, cache: dict[str, object]) -> None:
    """Write the cache atomically; failing to (a full disk, a read-only home) is one warning
    line on stderr, not an error: the measurement stands and is repeated next time."""
    from mlpbench.results.store import atomic_write, dumps

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, dumps(cache))
    except (OSError, UsageError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        print(f"mlpbench: warning: peak cache not saved ({reason})", file=sys.stderr)
