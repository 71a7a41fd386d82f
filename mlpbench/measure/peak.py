"""The device's measured dense matmul rate, the yardstick for every throughput figure.

``measure_peak`` warms up, then times square matmuls of a few sizes in repeated interleaved
passes and keeps the best size's median rate, with its spread over the passes and the load it
was taken under; the result is cached per machine, device, precision mode, thread count and
torch version, with the matrix unit the mode can use (AMX / AVX-512 BF16 from the CPU flags,
tensor cores from the GPU's compute capability) and when it was measured.

The cached peak is only the machine's *reference* yardstick (``peak_ref_gflops`` of a sweep
row). A sweep's fraction of peak divides by a yardstick timed beside the point, in the same
process (:func:`yardstick`). A cached entry is measured again when it is older than
``$MLPBENCH_PEAK_MAX_AGE_DAYS`` (default 7), has no time recorded, or was beaten by a later
run's interleaved yardstick by more than its spread (:func:`note_observed`): such a cached
peak was taken on a busy machine.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
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
    measured_at: float = 0.0  # Unix time of the measurement (0: not recorded: re-measure)
    load1: float | None = None  # 1-minute load when it was measured (the larger of before/after)
    spread: float | None = None  # (max - min) / median of the best size over the passes

    @property
    def age_days(self) -> float:
        return (time.time() - self.measured_at) / 86400 if self.measured_at else math.inf


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


#: fp32 FLOP per cycle per core of the widest vector unit the CPU flags show, assuming two
#: fused multiply-add pipes of that width (2 x lanes x 2): an upper bound — many cores have
#: one pipe, or split 512-bit work over two 256-bit ones
FP32_FLOP_PER_CYCLE = (("avx512f", 64), ("avx2", 32), ("avx", 16), ("asimd", 16), ("sse2", 8))
#: bf16 dot-product instructions do two FLOP per fp32 lane more (vdpbf16ps, AMX is far more)
BF16_FACTOR = {"avx512_bf16": 2}


def cpu_clock_ghz() -> float | None:
    """The highest clock the OS reports for this CPU (psutil: its max, else the current)."""
    import psutil

    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError, RuntimeError):
        return None
    if freq is None:
        return None
    mhz = freq.max if freq.max and freq.max > 0 else freq.current
    return mhz / 1000 if mhz and mhz > 0 else None


def ceiling(device: str, mode: str, threads: int, *, flags: set[str] | None = None,
            clock_ghz: float | None = None) -> tuple[float | None, str]:
    """A physical ceiling of the matmul rate, where it can be computed (CPU, fp32/bf16 without
    AMX): ``min(threads, cores) x FLOP per cycle x clock``, and how it was computed. ``None``
    with the reason elsewhere (a GPU's FLOP per SM depends on its architecture; AMX tiles).
    A measured rate above it means the clock runs above what the OS reports (turbo) or the
    assumptions are wrong — the label says which assumptions."""
    if torch.device(device).type != "cpu":
        return None, "not computed for GPUs"
    flags = cpu_flags() if flags is None else flags
    clock = cpu_clock_ghz() if clock_ghz is None else clock_ghz
    per = next((f for name, f in FP32_FLOP_PER_CYCLE if name in flags), None)
    if per is None or clock is None:
        return None, "not computed: no known vector unit or no clock reported"
    if mode == "bf16":
        if "amx_bf16" in flags:
            return None, "not computed for AMX"
        per *= next((f for name, f in BF16_FACTOR.items() if name in flags), 1)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)
    n = max(1, min(threads, cores))
    unit = next(name for name, _ in FP32_FLOP_PER_CYCLE if name in flags)
    return (n * per * clock, f"{n} cores x {per} FLOP/cycle ({unit}, 2 FMA pipes assumed) x "
            f"{clock:.2f} GHz (OS-reported): an upper bound")


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


#: passes over the sizes (interleaved) whose median makes the cached peak
PASSES = 3


def measure_peak(device: str = "cpu", mode: str = "fp32", *,
                 config: TimerConfig = TimerConfig(budget_s=0.3)) -> PeakResult:
    """Measure the best dense matmul GFLOP/s of ``device`` in ``mode``: a warm-up of the
    largest size, then :data:`PASSES` interleaved passes over the sizes; the best size's
    median over passes, with its spread."""
    dev = torch.device(device)
    if mode not in MODES.get(dev.type, ()):
        raise UsageError(f"peak mode {mode!r} not available on {dev.type}; "
                         f"choose from {', '.join(MODES.get(dev.type, ()))}")
    sizes = CUDA_SIZES if dev.type == "cuda" else CPU_SIZES
    load0 = _load1()
    _matmul_rate(sizes[-1], dev, mode, config)  # warm-up: frequency ramp, allocator, BLAS
    rates: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(PASSES):
        for n in sizes:
            rates[n].append(_matmul_rate(n, dev, mode, config))
    medians = {n: float(sorted(v)[len(v) // 2]) for n, v in rates.items()}
    best = max(medians, key=medians.__getitem__)
    info = describe_hardware()
    return PeakResult(device=dev.type, mode=mode, gflops=medians[best], size=best,
                      threads=torch.get_num_threads(), torch=torch.__version__,
                      machine_id=info["machine_id"], units=matrix_units(device, mode),
                      measured_at=time.time(), load1=max(load0, _load1()),
                      spread=(max(rates[best]) - min(rates[best])) / medians[best])


def _load1() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return math.nan


def max_age_days() -> float:
    """How old a cached peak may be (``$MLPBENCH_PEAK_MAX_AGE_DAYS``, default 7)."""
    raw = os.environ.get("MLPBENCH_PEAK_MAX_AGE_DAYS", "").strip()
    try:
        value = float(raw) if raw else 7.0
    except ValueError:
        raise UsageError(f"MLPBENCH_PEAK_MAX_AGE_DAYS={raw!r}: must be a number of days") \
            from None
    if not value >= 0:
        raise UsageError(f"MLPBENCH_PEAK_MAX_AGE_DAYS={raw!r}: must be >= 0")
    return value


def get_peak(device: str = "cpu", mode: str = "fp32", *, refresh: bool = False) -> PeakResult:
    """The cached peak for this machine and setting, measured (and cached) when missing,
    older than :func:`max_age_days` or of unknown age."""
    dev = torch.device(device).type
    machine = describe_hardware()["machine_id"]
    key = _key(dev, mode, torch.get_num_threads(), machine)
    path = cache_path()
    cache = {k: v for k, v in read_cache(path).items() if _entry(v) is not None}
    cached = _entry(cache.get(key)) if not refresh else None
    if cached is not None and cached.age_days <= max_age_days():
        return cached
    result = measure_peak(dev, mode)
    cache[key] = asdict(result)
    write_cache(path, cache)
    return result


def note_observed(device: str, mode: str, threads: int, observed_gflops: float) -> str:
    """Drop the cached peak when a run's interleaved yardstick beat it by more than its spread
    (at least 10%): it was measured on a busy machine. Returns a one-line note, or ``""``."""
    dev = torch.device(device).type
    key = _key(dev, mode, threads, describe_hardware()["machine_id"])
    path = cache_path()
    cache = read_cache(path)
    entry = _entry(cache.get(key))
    if entry is None or not observed_gflops > 0:
        return ""
    margin = max(entry.spread or 0.0, 0.10)
    if observed_gflops <= entry.gflops * (1 + margin):
        return ""
    del cache[key]
    write_cache(path, cache)
    return (f"cached {dev} {mode} peak ({entry.gflops:.1f} GFLOP/s, {threads} threads) was "
            f"beaten by this run's yardstick ({observed_gflops:.1f}): dropped, it is measured "
            "again next time")


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
